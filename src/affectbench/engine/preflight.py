"""Before a run: what it will cost and whether its prompts fit (`affectbench plan`, `run --dry-run`).

Per run, without loading weights or decoding media:
- samples: the run's selection (`select`), each rendered with the run's prompt (knowledge texts are not
  known yet and are not counted);
- prompt tokens per modality: text from the model's tokenizer when its folder is here (else
  ≈ UTF-8 bytes / 4, marked estimated), audio and video from the family's processor settings
  (`models.tokens`) applied to the frames, frame size and audio seconds a decode would give
  (`media.info`, from the container headers) under the run's media settings and family recipe;
- budgets: the video-token and audio-second budgets the backend applies (`models.budgets`), with the
  number of samples whose frames they thin (`video_cut`);
- context: the text backbone's `max_position_embeddings`, or `model.options.max_model_len` when
  smaller; a sample whose prompt + `max_new_tokens` exceeds it is *over*, and a run with any such
  sample is refused;
- memory: weights (`models.sizing`, the config built on the meta device, at `options.dtype`, bf16 by
  default) and the KV cache of one batch of the longest prompt (batch = `exec.batch_size`, or 1 for a
  family that runs one sample per forward);
- time: (prompt + new tokens over all samples) / `tokens_per_s`, a throughput the user measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import AffectbenchError, ModelError
from ..core.specs import ExecSpec, RunSpec
from ..media.info import StreamInfo, planned_clip, stream_info
from ..models import budgets, families, sizing, tokens
from .render import renderer
from .select import select

MODALITY_KEYS = ("text", "audio", "video")


@dataclass
class Preflight:
    """One run's preflight: token statistics (mean, max) per modality and of the whole prompt, the
    samples over the context, memory (bytes) and the estimated seconds (None when unknown)."""

    run_id: str
    name: str
    model: str
    family: str
    samples: int | None = None
    tokens: dict[str, tuple[float, int]] = field(default_factory=dict)
    text_estimated: bool = False
    context: int | None = None
    over: list[str] = field(default_factory=list)
    video_cut: int = 0
    params: int | None = None
    weight_bytes: int | None = None
    kv_bytes: int | None = None
    kv_per_token: int | None = None
    modalities: str = ""
    batch: int = 1
    seconds: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return bool(self.over)

    def reason(self) -> str:
        """Why the run is refused, naming up to five samples."""
        ids = ", ".join(self.over[:5]) + (" …" if len(self.over) > 5 else "")
        return (
            f"{self.name or self.run_id}: {len(self.over)} of {self.samples} prompts exceed the context of "
            f"{self.context} tokens (prompt + max_new_tokens), e.g. {ids}; lower the media budget "
            "(media.max_frames / max_pixels / max_seconds) or use a model with a longer context"
        )

    def row(self) -> dict[str, Any]:
        """A flat row for printing."""

        def stat(key: str) -> str:
            if key not in self.tokens:
                return "n/a"
            mean, mx = self.tokens[key]
            mark = "≈" if key in ("text", "prompt") and self.text_estimated else ""
            return f"{mark}{mean:.0f}/{mark}{mx}"

        gib = sizing.GIB
        return {
            "run": self.name or self.run_id,
            "model": self.model,
            "mods": self.modalities,
            "family": self.family,
            "samples": "n/a" if self.samples is None else str(self.samples),
            "text": stat("text"),
            "audio": stat("audio"),
            "video": stat("video"),
            "prompt": stat("prompt"),
            "context": "n/a" if self.context is None else str(self.context),
            "over": str(len(self.over)) if self.context is not None and self.samples is not None else "n/a",
            "video_cut": "n/a" if self.samples is None else str(self.video_cut),
            "params": "n/a" if self.params is None else f"{self.params / 1e9:.2f}e9",
            "weights_gib": "n/a" if self.weight_bytes is None else f"{self.weight_bytes / gib:.2f}",
            "kv_kib/token": "n/a" if self.kv_per_token is None else f"{self.kv_per_token / 1024:.0f}",
            "kv_gib": "n/a" if self.kv_bytes is None else f"{self.kv_bytes / gib:.2f} (x{self.batch})",
            "time": "n/a" if self.seconds is None else _duration(self.seconds),
            "verdict": "REFUSED" if self.refused else "ok",
        }


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def preflight(
    spec: RunSpec, exec_spec: ExecSpec | None = None, name: str = "", tokens_per_s: float | None = None
) -> Preflight:
    """The preflight of one run (see the module docstring). Never raises for a missing dataset or an
    unknown model: what cannot be known is None and said in `notes`."""
    exec_spec = exec_spec or ExecSpec()
    pf = Preflight(spec.run_id, name, f"{spec.model.backend}:{spec.model.name}", "unknown")
    pf.modalities = spec.media.modalities
    if spec.kind not in ("eval", "knowledge"):
        pf.notes.append(f"{spec.kind} runs are not planned here")
        return pf
    config, source = _config(spec)
    family = families.family_of(sizing.runnable_config(config)) if config else families.GENERIC
    if spec.model.options.get("family"):
        family = next((f for f in families.FAMILIES if f.key == spec.model.options["family"]), family)
    pf.family = family.key
    _size(pf, spec, config, source, family, exec_spec)
    counter, tokenizer = _counter(spec, family, pf.notes)
    try:
        sel = select(spec)
    except AffectbenchError as e:
        pf.notes.append(f"samples unknown: {e}")
        pf.kv_bytes = None  # needs the longest prompt
        return pf
    recipe = families.recipe_for(family, spec.model.options.get("recipe"))
    media = families.effective_media(spec.media, recipe) if spec.model.backend in ("hf", "vllm") else spec.media
    if pf.context is not None and "V" in media.modalities and budgets.video_budget(media) >= pf.context:
        pf.notes.append(
            f"the video budget (media.max_video_tokens = {budgets.video_budget(media)}) is not below the context "
            f"({pf.context}): set it lower so that a long clip cannot fill the context"
        )
    render = renderer(spec, sel.info, sel.prompt, {})
    infos: dict[str, StreamInfo] = {}
    per: dict[str, list[int]] = {k: [] for k in (*MODALITY_KEYS, "prompt")}
    new = spec.generation.max_new_tokens
    for sample in sel.samples:
        task = render(sample)
        if task.conversation is None:
            continue
        n = _count(task.conversation, spec, media, recipe, counter, tokenizer, infos)
        pf.video_cut += n.pop("video_cut")
        n["prompt"] = sum(n[k] for k in MODALITY_KEYS)
        for k, v in n.items():
            per[k].append(v)
        if pf.context is not None and n["prompt"] + new > pf.context:
            pf.over.append(sample.id)
    pf.samples = len(sel.samples)
    pf.text_estimated = tokenizer is None
    for k, vals in per.items():
        if vals and (k in ("text", "prompt") or counter is not None):
            pf.tokens[k] = (sum(vals) / len(vals), max(vals))
    if counter is None:
        pf.tokens.pop("prompt", None)
    if pf.kv_bytes is not None and per["prompt"]:
        pf.kv_bytes *= max(per["prompt"]) + new
    elif pf.kv_bytes is not None:
        pf.kv_bytes = None
    if tokens_per_s and per["prompt"]:
        pf.seconds = (sum(per["prompt"]) + new * len(per["prompt"])) / float(tokens_per_s)
    bad = [i for i in infos.values() if i.error]
    if bad:
        pf.notes.append(f"{len(bad)} media file(s) unreadable, e.g. {bad[0].path}: {bad[0].error}")
    return pf


def _config(spec: RunSpec) -> tuple[dict | None, str]:
    found = sizing.find_config(spec.model.name) if spec.model.name else None
    return found if found else (None, "")


def _size(pf: Preflight, spec: RunSpec, config, source: str, family, exec_spec: ExecSpec) -> None:
    """Weights, KV bytes per token (times tokens later) and the context, from the model config."""
    opts = spec.model.options
    limit = opts.get("max_model_len")
    if config is None:
        pf.notes.append("no model config here (a folder with config.json, or a packaged one): memory and context n/a")
        pf.context = int(limit) if limit else None
        return
    dtype = str(opts.get("dtype", "bfloat16"))
    try:
        size = sizing.model_size(config, dtype if dtype in sizing.DTYPE_BYTES else "bfloat16", source)
    except (AffectbenchError, ImportError) as e:
        pf.notes.append(f"memory and context n/a: {e}")
        pf.context = int(limit) if limit else None
        return
    pf.params, pf.weight_bytes = size.params, size.weight_bytes
    pf.context = min(x for x in (size.context, int(limit) if limit else None) if x) if (size.context or limit) else None
    pf.batch = 1 if family.batch == "single" or spec.model.backend == "openai" else exec_spec.batch_size
    pf.kv_per_token = size.kv_bytes_per_token
    pf.kv_bytes = size.kv_bytes_per_token * pf.batch  # x the longest prompt once known
    if spec.model.backend == "openai":
        pf.kv_bytes = None  # the server's memory, not this machine's
    pf.notes.append(f"config: {source.split(':')[0]}")


def _counter(spec: RunSpec, family, notes: list[str]):
    """The family's token counter and the tokenizer (None when not here): from the model folder's
    processor files when present, else the released settings."""
    folder = Path(spec.model.name) if spec.model.name else None
    if folder is not None and folder.is_dir() and (folder / "config.json").is_file():
        try:
            from transformers import AutoProcessor

            from ..models.hf import CAP_PIXELS_PER_FRAME

            proc = AutoProcessor.from_pretrained(str(folder))
            tok = getattr(proc, "tokenizer", proc)
            try:
                return tokens.counter_of(proc, family.key, CAP_PIXELS_PER_FRAME, f"{folder}"), tok
            except ModelError as e:
                notes.append(f"media tokens n/a: {e}")
                return None, tok
        except (OSError, ValueError, ImportError) as e:
            notes.append(f"processor not loadable from {folder}: {e}")
    if family is families.GENERIC:
        notes.append("family unknown: media tokens n/a")
        return None, None
    try:
        return tokens.released_counter(family.key), None
    except (ModelError, ImportError) as e:
        notes.append(f"media tokens n/a: {e}")
        return None, None


def _count(conv, spec: RunSpec, media, recipe, counter, tokenizer, infos) -> dict[str, int]:
    """Tokens per modality of one rendered conversation, after the prompt budgets (and `video_cut`:
    1 when the video-token budget thins its frames)."""
    texts = [spec.generation.system_prompt or recipe.system_prompt or ""]
    out = dict.fromkeys(MODALITY_KEYS, 0)
    shapes: list[tuple[int, int, int]] = []
    audio_left = media.max_audio_seconds
    for msg in conv:
        for p in msg.parts:
            if p.kind == "text":
                texts.append(p.text or "")
                continue
            if counter is None or not p.path:
                continue
            mod = "A" if p.kind == "audio" else "V"
            if mod not in media.modalities or (mod == "V" and recipe.video == "none"):
                continue
            key = str(p.path)
            if key not in infos:
                infos[key] = stream_info(p.path)
            info = infos[key]
            if info.error:
                continue
            clip = planned_clip(info, media, tuple(p.span) if p.span else None)
            if p.kind == "audio" and info.has_audio:
                seconds = clip.audio_seconds
                if audio_left is not None:  # the prompt's total audio budget (models.budgets)
                    seconds, audio_left = min(seconds, audio_left), max(0.0, audio_left - seconds)
                kept = counter.audio_seconds_kept(seconds)
                out["audio"] += counter.audio_clip(int(round(kept * counter.sample_rate)))
            elif p.kind == "video" and clip.frames:
                shapes.append((clip.frames, clip.height, clip.width))
            elif p.kind == "image" and clip.frames:
                out["video"] += counter.image(clip.height, clip.width)
    if shapes:  # the prompt's video-token budget, as the backend applies it (models.budgets)
        keep = budgets.fit_frames(counter, shapes, budgets.video_budget(media))
        out["video"] += sum(counter.video(k, h, w) for k, (_, h, w) in zip(keep, shapes, strict=True))
        out["video_cut"] = int(any(k < n for k, (n, _, _) in zip(keep, shapes, strict=True)))
    out.setdefault("video_cut", 0)
    text = "\n".join(t for t in texts if t)
    if tokenizer is not None:
        out["text"] = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    else:
        out["text"] = math.ceil(len(text.encode("utf-8")) / 4)
    return out


def table(pfs: list[Preflight]) -> str:
    """The preflights as an aligned plain-text table (tokens: mean/max), then each run's notes."""
    rows = [pf.row() for pf in pfs]
    if not rows:
        return "(no runs)"
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols)]
    lines += ["  ".join(r[c].ljust(width[c]) for c in cols) for r in rows]
    lines.append("tokens: mean/max per sample (≈ estimated: no tokenizer here); kv: one batch of the longest prompt")
    seen: set[tuple[str, str]] = set()
    for pf in pfs:
        for note in pf.notes:
            if (pf.name, note) not in seen:  # the runs of one matrix entry share their notes
                seen.add((pf.name, note))
                lines.append(f"- {pf.name or pf.run_id}: {note}")
        if pf.refused:
            lines.append(f"! {pf.reason()}")
    return "\n".join(lines)
