"""Training-side adapters: a backend's torch model + a function that turns (conversations,
answers) into model inputs with labels masked to the answer tokens.

A backend may provide `trainable()` itself (returning a `Trainable`); otherwise the adapters
here reuse the backend's own loading and input building so training sees exactly the inputs
that evaluation does: `hf` through `HFModel` (chat template, processor, decoded media), the
embedded `cascade` through its text LLM and its own prompt formatting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import AffectbenchError, ModelError
from ..core.specs import GenerationSpec, MediaSpec, ModelSpec
from ..models import Model, build_model
from ..models.base import Conversation

IGNORE = -100
TRAINED = "default"  # peft's name of the adapter get_peft_model adds (the one finetune trains and saves)
SUFFIX_KEY = "loss_suffix_tokens"  # encode() output: per row, labelled tokens after the answer (end of turn)
# module-name fragments of encoders/towers and heads that LoRA leaves alone unless train_towers
TOWER_PARTS = (
    "audio_tower",
    "visual",
    "vision_tower",
    "vision_model",
    "audio_model",
    "multi_modal_projector",
    "mm_projector",
    "lm_head",
    "embed_tokens",
    "talker",
    "token2wav",
)


@dataclass
class Trainable:
    """What the LoRA loop needs from a backend."""

    module: Any  # torch.nn.Module, base weights (no adapter), on its device
    encode: Callable[[list[Conversation], list[str]], dict[str, Any]]  # → model kwargs incl. `labels`
    # (and optionally SUFFIX_KEY: per row, how many labelled tokens follow the answer; the trainer pops it)
    prepare: Callable[[Conversation], Conversation]  # decode media etc. (as in eval)
    device: str = "cpu"
    base: dict[str, Any] = field(default_factory=dict)  # what the adapter was trained on, for its card
    media_ids: set[int] = field(default_factory=set)  # audio/video/image placeholder token ids (never truncated)
    # prepared conversations → model kwargs of the prompt alone (generation prompt added, left-padded,
    # no labels): what a readout head reads the hidden states of; None where a backend cannot say
    encode_prompt: Callable[[list[Conversation]], dict[str, Any]] | None = None
    system: str | None = None  # the system prompt the backend adds to a conversation without one (exports)
    tail_tokens: int = 0  # tokens the chat template writes after the trained completion (its trailing "\n")


def lm_linear_modules(module: Any, train_towers: bool = False) -> list[str]:
    """Full names of the Linear layers LoRA should adapt: the language model's, towers too if asked."""
    import torch

    names = []
    for name, sub in module.named_modules():
        if not isinstance(sub, torch.nn.Linear):
            continue
        parts = name.split(".")
        if any(p.startswith("lora_") for p in parts):  # the A / B of an adapter already loaded (card adapters)
            continue
        if parts[-1] == "base_layer":  # a Linear an adapter already wraps: peft adds one more to the wrapper
            name = ".".join(parts[:-1])
        if "lm_head" in name:
            continue
        if not train_towers and any(part in name for part in TOWER_PARTS):
            continue
        names.append(name)
    return names


def _tail_labels(input_ids, n_answer: list[int]):
    """Labels that keep only the last n tokens of each (left-padded) row."""
    labels = input_ids.clone().fill_(IGNORE)
    width = input_ids.shape[1]
    for i, n in enumerate(n_answer):
        n = min(n, width)
        labels[i, width - n :] = input_ids[i, width - n :]
    return labels


def _suffix_tokens(tok, completion: str, answer: str) -> int:
    """Tokens of what the completion writes after the answer (end of turn), tokenised alone."""
    at = completion.rfind(answer)
    rest = completion[at + len(answer) :] if at >= 0 else ""
    return len(tok(rest, add_special_tokens=False)["input_ids"]) if rest else 0


def _tail_tokens(apply_template, tok) -> int:
    """Tokens the chat template writes after an assistant turn's completion that training leaves out
    (`_completion` strips the trailing newline of `<|im_end|>\n`); LLaMA-Factory's and ms-swift's chatml
    templates keep it, so an export's cutoff_len adds them."""
    msgs = [{"role": "user", "content": "x"}]
    try:
        full = apply_template([*msgs, {"role": "assistant", "content": "y"}], tokenize=False)
    except Exception:
        return 0
    tail = full[len(full.rstrip("\n")) :]
    return len(tok(tail, add_special_tokens=False)["input_ids"]) if tail else 0


def _completion(apply_template: Callable[..., str], msgs: list[dict], answer: str, eos: str | None) -> str:
    """The assistant turn as the chat template writes it after the generation prompt (answer + end of turn)."""
    prompt = apply_template(msgs, add_generation_prompt=True, tokenize=False)
    try:
        full = apply_template([*msgs, {"role": "assistant", "content": answer}], tokenize=False)
    except Exception:  # some templates reject a plain-string assistant turn
        full = apply_template(
            [*msgs, {"role": "assistant", "content": [{"type": "text", "text": answer}]}], tokenize=False
        )
    if full.startswith(prompt) and answer in full[len(prompt) :]:
        return full[len(prompt) :].rstrip("\n")
    return answer + (eos or "")


def hf_trainable(
    spec: ModelSpec, media: MediaSpec, workspace: Path | None, gen: GenerationSpec, card_adapters: bool = True
) -> Trainable:
    """The hf backend's model and processor; inputs built by HFModel itself (same as eval).

    A checkpoint's card adapters (Phi-4-multimodal's speech / vision LoRA; models.hf options.card_adapters) are
    loaded frozen, as eval loads them, unless `card_adapters` is False. With them, every forward of the module
    activates the one its inputs pick (`HFModel.activate_adapters`; a batch whose rows pick different ones is a
    ModelError) with the adapter being trained (peft's `TRAINED`) on top: a forward pre-hook, so it holds for each
    batch the Trainer fetched ahead (`get_batch_samples`) and for the validation loss. `base["card_adapters"]`
    records them for the adapter's card (`models.hf` stacks the adapter on them at eval)."""
    from ..models.hf import HFModel

    opts = dict(spec.options) if card_adapters else {**spec.options, "card_adapters": False}
    hf = HFModel(spec.model_copy(update={"adapter": None, "options": opts}), media, workspace)
    hf.opts["merge_adapter"] = False
    proc = hf.processor
    tok = getattr(proc, "tokenizer", proc)
    model = hf.model
    if hf.card_adapters:

        def activate(module, args, kwargs):
            trained = TRAINED if TRAINED in (getattr(module, "peft_config", None) or {}) else None
            hf.activate_adapters(kwargs, trained)

        model.register_forward_pre_hook(activate, with_kwargs=True)

    def encode(batch: list[Conversation], answers: list[str]) -> dict[str, Any]:
        completions, n_answer, n_suffix = [], [], []
        for conv, ans in zip(batch, answers, strict=True):
            msgs, *_ = hf.chat_inputs(conv, gen)
            comp = _completion(proc.apply_chat_template, msgs, ans, tok.eos_token)
            completions.append(comp)
            n_answer.append(len(tok(comp, add_special_tokens=False)["input_ids"]))
            n_suffix.append(_suffix_tokens(tok, comp, ans))
        inputs = hf.encode(batch, gen, suffixes=completions)
        inputs = dict(inputs)
        inputs["labels"] = _tail_labels(inputs["input_ids"], n_answer)
        inputs[SUFFIX_KEY] = n_suffix
        return inputs

    def encode_prompt(batch: list[Conversation]) -> dict[str, Any]:
        return dict(hf.encode(batch, gen))

    media_ids = set().union(*hf.placeholder_ids.values())
    base = {"backend": "hf", "name": spec.name, "class": type(model).__name__}
    if hf.card_adapters:  # trained on top of these (frozen), as eval stacks it (models.hf)
        base["card_adapters"] = dict(hf.card_adapters)
    if hf.thinker_prefix:  # trained on the thinker of a full Omni checkpoint
        base["thinker_prefix"] = hf.thinker_prefix
    system = gen.system_prompt or hf.recipe.system_prompt
    tail = _tail_tokens(proc.apply_chat_template, tok)
    return Trainable(
        model,
        encode,
        hf.prepare,
        str(hf.device),
        base,
        media_ids,
        encode_prompt=encode_prompt,
        system=system,
        tail_tokens=tail,
    )


def text_trainable(model_obj: Model, spec: ModelSpec, gen: GenerationSpec) -> Trainable:
    """A text LLM behind a backend that turns conversations into a text prompt (`llm_prompt`)."""
    import torch

    from ..models import textlm
    from ..models.hf import torch_device

    transformers = __import__("transformers")
    folder = textlm.resolve(spec.name)
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    tok.padding_side = "left"
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    device = torch_device()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    module = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype).to(device)
    prompt_of = getattr(model_obj, "llm_prompt", None)
    if prompt_of is None:
        raise ModelError(
            f"backend {spec.backend!r} has no llm_prompt(conversation) method, so fine-tuning cannot "
            "reproduce its prompts; add one (or a trainable() method) to the backend"
        )

    def encode(batch: list[Conversation], answers: list[str]) -> dict[str, Any]:
        texts, n_answer, n_suffix = [], [], []
        for conv, ans in zip(batch, answers, strict=True):
            prompt = prompt_of(conv, gen) if _takes_gen(prompt_of) else prompt_of(conv)
            comp = ans + (tok.eos_token or "")
            texts.append(prompt + comp)
            n_answer.append(len(tok(comp, add_special_tokens=False)["input_ids"]))
            n_suffix.append(_suffix_tokens(tok, comp, ans))
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        enc = {k: v.to(device) for k, v in enc.items()}
        enc["labels"] = _tail_labels(enc["input_ids"], n_answer)
        enc[SUFFIX_KEY] = n_suffix
        return enc

    def encode_prompt(batch: list[Conversation]) -> dict[str, Any]:
        texts = [prompt_of(conv, gen) if _takes_gen(prompt_of) else prompt_of(conv) for conv in batch]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        # positions from the mask: a left-padded row gets the positions it has alone (batching changes nothing)
        enc["position_ids"] = (enc["attention_mask"].cumsum(1) - 1).clamp(min=0)
        return {k: v.to(device) for k, v in enc.items()}

    base = {"backend": spec.backend, "name": str(folder)}
    return Trainable(module, encode, model_obj.prepare, device, base, encode_prompt=encode_prompt)


def _takes_gen(fn: Callable) -> bool:
    import inspect

    try:
        return len(inspect.signature(fn).parameters) >= 2
    except (TypeError, ValueError):
        return False


def trainable_for(
    spec: ModelSpec, media: MediaSpec, workspace: Path | None, gen: GenerationSpec, card_adapters: bool = True
) -> Trainable:
    """The training adapter of a model spec (without its adapter: training starts from the base; with the
    checkpoint's card adapters unless `card_adapters` is False, see `hf_trainable`)."""
    base = spec.model_copy(update={"adapter": None})
    if base.backend == "hf":
        return hf_trainable(base, media, workspace, gen, card_adapters)
    model = build_model(base, media, workspace)
    if hasattr(model, "trainable"):
        return model.trainable(gen)
    if hasattr(model, "llm_prompt"):
        return text_trainable(model, base, gen)
    raise AffectbenchError(
        f"backend {base.backend!r} cannot be fine-tuned here; LoRA runs on the hf backend and on the "
        "embedded cascade's text LLM (train elsewhere with `affectbench.finetune.export` and load the adapter)"
    )
