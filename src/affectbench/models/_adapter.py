"""Adapters that are really active: a LoRA folder can load and still change nothing (module names that
match no module of the loaded model, zero weights, targets the engine drops), giving base-model answers
with no warning (vllm #34186; PR #39369: a text adapter's prefix under a multimodal wrapper; PR #39278).

Before a run with an adapter the backend compares the model's next-token logits on one probe prompt with
and without it (`check_active`) and fails the run when they are equal. The adapter's own module paths
(`adapter_modules`, from its weight file) say which targets sit in an audio or vision tower
(`tower_modules`): engines that apply LoRA to the language model only (vLLM) refuse them by name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..core.errors import ModelError

PROBE_TEXT = "How does the speaker feel? Answer with one word."
# path segments of the audio / vision towers and their projectors in the zoo's transformers classes
TOWER_SEGMENTS = (
    "audio_tower",
    "visual",
    "vision_tower",
    "vision_model",
    "audio_model",
    "embed_audio",
    "embed_vision",
    "multi_modal_projector",
    "audio_embed",
    "image_embed",
)
_LORA_KEY = re.compile(r"^(?:base_model\.model\.)?(.*?)\.lora_(?:A|B|embedding_A|embedding_B)(?:\.[^.]+)?\.weight$")


def adapter_modules(folder: str | Path) -> list[str]:
    """The module paths a LoRA folder holds weights for (peft's `adapter_model.safetensors` keys without
    the `base_model.model.` prefix and the lora_A/B suffix); [] when the folder has no safetensors file."""
    path = Path(folder) / "adapter_model.safetensors"
    if not path.is_file():
        return []
    from safetensors import safe_open

    with safe_open(str(path), framework="np") as f:
        keys = list(f.keys())
    return sorted({m.group(1) for k in keys if (m := _LORA_KEY.match(k))})


def tower_modules(modules: list[str]) -> list[str]:
    """The module paths among `modules` that lie in an audio or vision tower (`TOWER_SEGMENTS`)."""
    return [m for m in modules if set(m.split(".")) & set(TOWER_SEGMENTS)]


def target_modules(folder: str | Path) -> object:
    """`target_modules` of the folder's adapter_config.json (a list or a regex string; None when absent)."""
    try:
        return json.loads((Path(folder) / "adapter_config.json").read_text()).get("target_modules")
    except (OSError, ValueError):
        return None


def check_active(backend: str, folder: str | Path, change: float, tol: float = 0.0) -> float:
    """Raise ModelError when the adapter moved no logit of the probe prompt by more than `tol`; return `change`
    (the largest absolute logit change, recorded in the run's info)."""
    if not change > tol:
        mods = adapter_modules(folder)
        held = f"{len(mods)} modules, e.g. {mods[:3]}" if mods else f"target_modules {target_modules(folder)!r}"
        raise ModelError(
            f"{backend}: the LoRA adapter {folder} changes no logit of the probe prompt (largest change {change:g}): "
            f"it is inactive, its weights are zero or its module names match no module of the loaded model "
            f"({held}); vllm #34186 shows how this passes silently"
        )
    return float(change)
