"""How big a model is before any weight is loaded: parameters and weight bytes from its config, built
on PyTorch's meta device (no memory, no weights), and the KV cache a prompt of n tokens needs.

The config comes from the model's folder (`config.json`) or, for released checkpoints whose files are
not here, from `models/configs/<id>.json` (the size-defining fields of the published config.json, each
file naming its source; a file with `"_sizes": false` names only the family). Composite checkpoints
(Qwen2.5-Omni's thinker + talker + token2wav) are sized as the part the hf backend
loads (the thinker: `thinker_config`).

KV cache per token = 2 (K and V) x layers x KV heads x head dim x bytes per element (the text backbone's
attention; Gemma 3n's KV-shared layers are counted as their own, an upper bound).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..core.errors import ModelError, require
from . import families

DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "auto": 2}
GIB = 1024**3


@dataclass(frozen=True)
class Size:
    """params: all parameters of the part that runs; parts: params per submodule (towers, language model,
    head: the children of a `model` wrapper are listed one by one);
    kv_bytes_per_token at `dtype`; context: the text backbone's max_position_embeddings."""

    params: int
    parts: dict[str, int]
    dtype: str
    weight_bytes: int
    kv_bytes_per_token: int
    context: int | None
    source: str

    def kv_bytes(self, tokens: int) -> int:
        return self.kv_bytes_per_token * int(tokens)


def embedded_configs() -> dict[str, dict[str, Any]]:
    """Model id (file stem) -> config dict of the packaged released-model configs."""
    out = {}
    for f in resources.files("affectbench.models").joinpath("configs").iterdir():
        if f.name.endswith(".json"):
            out[f.name[: -len(".json")]] = json.loads(f.read_text(encoding="utf-8"))
    return out


def find_config(name: str) -> tuple[dict[str, Any], str] | None:
    """(config dict, where it came from) for a model name: its folder's config.json, else the packaged
    config whose id is in the name (separators and case ignored; the longest id wins), else None."""
    cfg = families.local_config(name)
    if cfg:
        return cfg, f"{name}/config.json"
    key = _norm(name)
    hits = [(len(k), k, c) for k, c in embedded_configs().items() if _norm(k) in key]
    if not hits:
        return None
    _, k, c = max(hits)
    return c, f"packaged config {k}: {c.get('_source', '')}"


def _norm(s: str) -> str:
    return "".join(ch for ch in s.lower() if ch.isalnum())


def runnable_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config of the part the hf backend runs: a composite omni checkpoint's `thinker_config`."""
    if isinstance(config.get("thinker_config"), dict):
        return dict(config["thinker_config"])
    return {k: v for k, v in config.items() if not k.startswith("_")}


def model_size(config: dict[str, Any], dtype: str = "bfloat16", source: str = "") -> Size:
    """Parameters (built on the meta device) and KV bytes per token of the model `config` describes.

    Raises ModelError when transformers has no class for the config's model_type."""
    if config.get("_sizes") is False:
        raise ModelError(f"no size-defining config fields packaged ({config.get('_source', '')})")
    torch = require("torch", "hf", "model sizing")
    transformers = require("transformers", "hf", "model sizing")
    cfg = runnable_config(config)
    model_type = str(cfg.get("model_type", ""))
    fam = families.BY_TYPE.get(model_type)
    rest = {k: v for k, v in cfg.items() if k != "model_type" and not k.startswith("_")}
    try:
        conf = transformers.AutoConfig.for_model(model_type, **rest)
    except (KeyError, ValueError) as e:
        raise ModelError(f"sizing: transformers does not know model_type {model_type!r}: {e}") from e
    cls = None
    for name in fam.classes if fam else ():
        cls = getattr(transformers, name, None)
        if cls is not None:
            break
    with torch.device("meta"):
        if cls is not None:
            model = cls(conf)
        else:
            try:
                model = transformers.AutoModelForCausalLM.from_config(conf)
            except ValueError:
                model = transformers.AutoModel.from_config(conf)
    parts = {}
    for name, sub in model.named_children():
        kids = [(f"{name}.{k}", c) for k, c in sub.named_children() if any(True for _ in c.parameters())]
        for part, mod in kids if name == "model" and len(kids) > 1 else [(name, sub)]:
            n = sum(p.numel() for p in mod.parameters())
            if n:
                parts[part] = n
    params = sum(p.numel() for p in model.parameters())
    width = DTYPE_BYTES.get(str(dtype), 2)
    text = conf.get_text_config() if hasattr(conf, "get_text_config") else conf
    heads = int(text.num_attention_heads)
    kv_heads = int(getattr(text, "num_key_value_heads", None) or heads)
    head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // heads)
    layers = int(text.num_hidden_layers)
    context = getattr(text, "max_position_embeddings", None)
    return Size(
        params=int(params),
        parts=parts,
        dtype=str(dtype),
        weight_bytes=int(params) * width,
        kv_bytes_per_token=2 * layers * kv_heads * head_dim * width,
        context=int(context) if context else None,
        source=source,
    )


def size_of(name: str, dtype: str = "bfloat16") -> Size | None:
    """`model_size` of a model by name (folder or packaged config); None when no config is found."""
    found = find_config(name)
    if found is None:
        return None
    config, source = found
    return model_size(config, dtype, source)


__all__ = ["GIB", "Size", "embedded_configs", "find_config", "model_size", "size_of"]
