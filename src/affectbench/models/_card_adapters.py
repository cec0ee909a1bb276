"""LoRA adapters a checkpoint ships for its own input modalities, loaded and selected per forward as its card does.

Phi-4-multimodal-instruct ships `speech-lora/` and `vision-lora/` beside its weights. transformers' page for the
native port (docs/source/en/model_doc/phi4_multimodal.md) loads each with
`model.load_adapter(path, adapter_name="speech"|"vision", adapter_kwargs={"subfolder": "speech-lora"|"vision-lora"})`
and calls `model.set_adapter(name)` before generating; the checkpoint's own remote code (modeling_phi4mm.py,
`Phi4MMForCausalLM.forward`) picks one per forward from its input mode: an image (vision, or vision + speech)
-> "vision", speech alone -> "speech", text alone -> none (`unset_lora_adapter`). Without them the native
port answers as the bare Phi-4-mini backbone.

One adapter is active per forward (`activate` refuses several). A task LoRA (`ModelSpec.adapter`) is trained on
the base without the card adapters (finetune builds its model with `card_adapters: false`) and replaces them at
eval; stacking it on a card adapter, or merging while card adapters are loaded, is refused: ms-swift #5811 shows
the result on Phi-4 (a task LoRA beside the built-in ones, inactive at inference, unmergeable).
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import ModelError

# family key -> {adapter name: subfolder of the checkpoint}, from the checkpoint layout and the docs above
SHIPPED = {"phi4_multimodal": {"speech": "speech-lora", "vision": "vision-lora"}}
TASK = "task"  # the name recorded in Generation.meta["adapter"] for ModelSpec.adapter


def shipped(family: str, folder: str | Path) -> dict[str, str]:
    """{name: subfolder} of the family's card adapters present in the local checkpoint `folder` (each subfolder
    holding an adapter_config.json); {} for other families or a hub id."""
    root = Path(folder)
    return {n: sub for n, sub in SHIPPED.get(family, {}).items() if (root / sub / "adapter_config.json").is_file()}


def wanted(family: str, folder: str | Path, option: object, task_adapter: str | None) -> dict[str, str]:
    """The card adapters to load under options.card_adapters (auto | true | false; auto = those shipped, unless a
    task adapter replaces them). ModelError: true with a task adapter (several adapters at once), or true for a
    checkpoint that ships none."""
    if option not in ("auto", True, False, None):
        raise ModelError(f"hf: options.card_adapters must be auto, true or false, not {option!r}")
    if option is False:
        return {}
    found = shipped(family, folder)
    if option is True:
        if task_adapter:
            raise ModelError(
                f"hf: card_adapters: true with the task adapter {task_adapter} would activate several LoRA adapters "
                "at once; the task adapter is trained without the card adapters and replaces them (ms-swift #5811)"
            )
        if not found:
            raise ModelError(f"hf: card_adapters: true but {folder} ships none of {SHIPPED.get(family, {})}")
    return {} if task_adapter else found


def load(model, folder: str | Path, adapters: dict[str, str]) -> None:
    """Load each card adapter into `model` as the docs do (transformers' PeftAdapterMixin.load_adapter); all
    disabled until `activate`."""
    for name, sub in adapters.items():
        try:
            model.load_adapter(str(folder), adapter_name=name, adapter_kwargs={"subfolder": sub})
        except Exception as e:
            raise ModelError(f"hf: cannot load the card adapter {Path(folder) / sub}: {e}") from e
    if adapters:
        activate(model, None)


def select(adapters: dict[str, str], inputs: dict) -> str | None:
    """The card's rule for one forward: image features -> "vision", else audio features -> "speech", else none;
    None too when the checkpoint lacks the chosen adapter."""
    if inputs.get("image_pixel_values") is not None:
        name = "vision"
    elif inputs.get("audio_input_features") is not None:
        name = "speech"
    else:
        return None
    return name if name in adapters else None


def activate(model, name: str | list[str] | None) -> None:
    """Make `name` the only active adapter (None: none) on every peft LoRA layer of `model` (what transformers'
    `set_adapter` / `disable_adapters` do, here through peft's layer API, which peft 0.21 has too).
    ModelError for several names (a list of more than one)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if isinstance(name, (list, tuple)):
        if len(name) > 1:
            raise ModelError(
                f"hf: activating several LoRA adapters at once ({list(name)}) is refused: one card adapter per "
                "forward, as the checkpoint's card selects (ms-swift #5811)"
            )
        name = name[0] if name else None
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            if name is not None:
                module.set_adapter(name)
            module.enable_adapters(name is not None)
