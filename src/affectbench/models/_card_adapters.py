"""LoRA adapters a checkpoint ships for its own input modalities, loaded and selected per forward as its card does,
and a task LoRA (ModelSpec.adapter, e.g. from our SFT) stacked on top of them.

Phi-4-multimodal-instruct ships `speech-lora/` and `vision-lora/` beside its weights. transformers' page for the
native port (docs/source/en/model_doc/phi4_multimodal.md) loads each with
`model.load_adapter(path, adapter_name="speech"|"vision", adapter_kwargs={"subfolder": "speech-lora"|"vision-lora"})`
and calls `model.set_adapter(name)` before generating; the checkpoint's own remote code (modeling_phi4mm.py,
`Phi4MMForCausalLM.forward`) picks one per forward from its input mode: an image (vision, or vision + speech)
-> "vision", speech alone -> "speech", text alone -> none (`unset_lora_adapter`). Without them the native
port answers as the bare Phi-4-mini backbone.

One card adapter is active per forward (`activate` refuses two). A task adapter is loaded as one more named adapter
(`TASK`) and is active in every forward on top of the card adapter the input picks: finetune trains it that way
(the card adapters frozen, the one the batch's inputs pick active in each training forward), and its card
(`CARD_FILE`, `base.card_adapters`) records which card adapters it was trained on top of. Merging it into the
weights while card adapters are loaded is refused: the merged delta would sit under every card adapter and under
none, and merging several LoRA adapters of Phi-4 is what ms-swift #5811 shows going wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..core.errors import ModelError

# family key -> {adapter name: subfolder of the checkpoint}, from the checkpoint layout and the docs above
SHIPPED = {"phi4_multimodal": {"speech": "speech-lora", "vision": "vision-lora"}}
TASK = "task"  # the adapter name of ModelSpec.adapter beside the card adapters (and in Generation.meta["adapters"])
CARD_FILE = "affectbench_finetune.json"  # the card finetune writes beside a task adapter (finetune.lora)
MERGE_REFUSED = (
    "merging the task adapter while card adapters are loaded is refused: the merged weights would carry it under "
    "every card adapter and under none, and merging several LoRA adapters of Phi-4 is what ms-swift #5811 shows "
    "failing; drop merge_adapter (the default keeps it unmerged beside the card adapters)"
)


def shipped(family: str, folder: str | Path) -> dict[str, str]:
    """{name: subfolder} of the family's card adapters present in the local checkpoint `folder` (each subfolder
    holding an adapter_config.json); {} for other families or a hub id."""
    root = Path(folder)
    return {n: sub for n, sub in SHIPPED.get(family, {}).items() if (root / sub / "adapter_config.json").is_file()}


def trained_on(task_adapter: str | Path) -> dict[str, str] | None:
    """The card adapters {name: subfolder} a task adapter was trained on top of, from its finetune card
    (`CARD_FILE`, `base.card_adapters`): {} for a card without them (trained on the bare base), None for a folder
    without our card (trained elsewhere)."""
    path = Path(task_adapter) / CARD_FILE
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text()).get("base", {}).get("card_adapters") or {})
    except (OSError, ValueError, AttributeError) as e:
        raise ModelError(f"hf: unreadable adapter card {path}: {e}") from e


def wanted(family: str, folder: str | Path, option: object, task_adapter: str | None) -> dict[str, str]:
    """The card adapters to load under options.card_adapters (auto | true | false). auto = those shipped; with a
    task adapter, those its card says it was trained on top of (none for one trained on the bare base; all shipped
    for an adapter without our card). ModelError: an unknown option; true for a checkpoint that ships none; true
    with a task adapter trained on the bare base; false, or a checkpoint lacking one of them, with a task adapter
    trained on top of card adapters (evaluated without them it is a model it was never trained as)."""
    if option not in ("auto", True, False, None):
        raise ModelError(f"hf: options.card_adapters must be auto, true or false, not {option!r}")
    found = shipped(family, folder) if option is not False else {}
    on = trained_on(task_adapter) if task_adapter else None
    if on:
        missing = sorted(set(on) - set(found))
        if missing:
            why = "card_adapters: false" if option is False else f"{folder} lacks {missing}"
            raise ModelError(
                f"hf: the task adapter {task_adapter} was trained on top of the card adapters {sorted(on)}; "
                f"{why}, and evaluating it without them is refused (use card_adapters: auto)"
            )
        return {n: found[n] for n in on}
    if option is True and not found:
        raise ModelError(f"hf: card_adapters: true but {folder} ships none of {SHIPPED.get(family, {})}")
    if on == {} and found:  # our task adapter, trained on the bare base: evaluated as trained
        if option is True:
            raise ModelError(
                f"hf: the task adapter {task_adapter} was trained on the bare base, without card adapters; "
                "stacking it on them (card_adapters: true) is refused (use card_adapters: auto or false)"
            )
        return {}
    return found


def load(model, folder: str | Path, adapters: dict[str, str]) -> None:
    """Load each card adapter into `model` as the docs do (transformers' PeftAdapterMixin.load_adapter), frozen
    (requires_grad False); all disabled until `activate`."""
    for name, sub in adapters.items():
        try:
            model.load_adapter(str(folder), adapter_name=name, adapter_kwargs={"subfolder": sub})
        except Exception as e:
            raise ModelError(f"hf: cannot load the card adapter {Path(folder) / sub}: {e}") from e
    if adapters:
        freeze(model, list(adapters))
        activate(model, None)


def load_task(model, folder: str | Path) -> None:
    """Load the task adapter `folder` beside the card adapters as `TASK` (the same transformers `load_adapter`),
    frozen; active only through `activate(..., task=TASK)`."""
    try:
        model.load_adapter(str(folder), adapter_name=TASK)
    except Exception as e:
        raise ModelError(f"hf: cannot load the task adapter {folder} beside the card adapters: {e}") from e
    freeze(model, [TASK])
    activate(model, None)


def freeze(model, names: list[str]) -> None:
    """requires_grad False on every weight of the named adapters in `model`'s peft LoRA layers."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            for attr in module.adapter_layer_names:
                layers = getattr(module, attr)
                for name in names:
                    if name in layers:
                        layers[name].requires_grad_(False)


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


def select_rows(adapters: dict[str, str], input_ids, placeholder_ids: dict[str, set[int]]) -> list[str | None]:
    """The card's rule applied to each row of `input_ids` (batch, width) alone, from its placeholder tokens
    (`placeholder_ids` {"A": ids, "V": ids}; Phi-4 sends frames as images, "V"): what `select` would pick for
    that row in a forward of its own."""
    out: list[str | None] = []
    for row in input_ids.tolist():
        present = set(row)
        name = "vision" if placeholder_ids["V"] & present else "speech" if placeholder_ids["A"] & present else None
        out.append(name if name in adapters else None)
    return out


def activate(model, name: str | list[str] | None, task: str | None = None) -> None:
    """Make the card adapter `name` (None: none) and, when given, the task adapter `task` on top the only active
    adapters on every peft LoRA layer of `model` (what transformers' `set_adapter` / `disable_adapters` do, here
    through peft's layer API, which peft 0.21 has too). Trainability is left as it was: peft's layer `set_adapter`
    and `enable_adapters` mark the active adapters trainable, which would put the frozen card adapters into the
    gradients (and the clipped gradient norm) of a training step. ModelError for two card adapters (a list of
    more than one)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if isinstance(name, (list, tuple)):
        if len(name) > 1:
            raise ModelError(
                f"hf: activating several LoRA adapters at once ({list(name)}) is refused: one card adapter per "
                "forward, as the checkpoint's card selects (ms-swift #5811)"
            )
        name = name[0] if name else None
    names = [n for n in (name, task) if n is not None]
    for module in model.modules():
        if isinstance(module, BaseTunerLayer):
            grads = [(p, p.requires_grad) for p in module.parameters()]
            if names:
                module.set_adapter(names)
            module.enable_adapters(bool(names))
            for p, g in grads:
                p.requires_grad_(g)
