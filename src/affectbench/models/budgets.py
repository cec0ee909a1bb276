"""Media budgets per prompt, applied to a prepared conversation whatever form its frames take.

- Video: the total video tokens of a prompt — every video part, counted as the family's processor
  counts it (`models.tokens`: a frame stack for Qwen families, one image per frame for Gemma 3n and
  Phi-4) — is at most `MediaSpec.max_video_tokens` (None: `DEFAULT_VIDEO_TOKENS`, the Qwen2.5-VL
  report's cap of 24,576 video tokens). Over it, each video keeps frames spread uniformly over the
  whole clip (a multiple of the temporal patch), its rate on the time axis lowered to match.
  A decoded list of frames is budgeted like a video file (Qwen3-VL #1248: frame lists bypassed
  qwen-vl-utils' total-pixel budget).
- Audio: the total audio seconds of a prompt is at most `MediaSpec.max_audio_seconds` (None: no total
  cap); later parts are cut first.
- Every cut is recorded in the prediction's meta, one shape for every family and cause:
  `video_truncated`: [{frames, frames_sent, tokens, tokens_sent}], `audio_truncated`:
  [{seconds, seconds_sent, by}] (`by`: "max_audio_seconds", "max_seconds" for a decode that stopped at
  `MediaSpec.max_seconds` and "processor window" for the feature extractor's window, both recorded by
  `_media.audio_sent` where the backend builds its audio).

The context check is the caller's: a prompt whose tokens + max_new_tokens exceed the model's context
fails that sample with a ModelError (hf), and `affectbench plan` refuses such a run beforehand.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from ..core.specs import MediaSpec
from ..core.types import Message, Part
from ..media import DecodedClip
from . import _media
from .base import Conversation
from .tokens import Counter

DEFAULT_VIDEO_TOKENS = 24576  # Qwen2.5-VL technical report (arXiv 2502.13923): 768 frames, 24,576 video tokens


def video_budget(media: MediaSpec) -> int:
    """The total video tokens a prompt may hold under `media`."""
    value = getattr(media, "max_video_tokens", None)
    return int(value) if value is not None else DEFAULT_VIDEO_TOKENS


def fit_frames(counter: Counter, shapes: list[tuple[int, int, int]], budget: int) -> list[int]:
    """Frames to keep per video (T, H, W) so that their total tokens are within `budget`.

    Proportional first, then the longest video loses one temporal step at a time; a video never drops
    below one step (the processor's minimum), so a budget below that is not met (the context check
    then decides)."""
    frames = [n for n, _, _ in shapes]
    total = sum(counter.video(n, h, w) for n, h, w in shapes)
    if total <= budget or not shapes:
        return frames
    step = counter.temporal if counter.vision == "grid" else 1
    scale = budget / total
    frames = [max(step, int(n * scale) // step * step) if n > step else n for n in frames]

    def tokens(fr: list[int]) -> int:
        return sum(counter.video(n, h, w) for n, (_, h, w) in zip(fr, shapes, strict=True))

    while tokens(frames) > budget and any(n > step for n in frames):
        i = max(range(len(frames)), key=lambda k: frames[k])
        frames[i] -= step
    return frames


def _keep_frames(clip: DecodedClip, n: int) -> DecodedClip:
    """`clip` with `n` of its frames, spread uniformly from the first to the last."""
    idx = np.unique(np.linspace(0, len(clip.frames) - 1, n).round().astype(int))
    fps = clip.fps * len(idx) / len(clip.frames) if clip.fps else clip.fps
    times = clip.frame_times[idx] if len(clip.frame_times) == len(clip.frames) else clip.frame_times
    return replace(clip, frames=clip.frames[idx], frame_times=times, fps=fps)


def _cut_audio(clip: DecodedClip, seconds: float) -> DecodedClip:
    n = max(0, int(round(seconds * clip.sample_rate)))
    return replace(clip, audio=clip.audio[:n], has_audio=n > 0)


def fit(conv: Conversation, counter: Counter | None, media: MediaSpec) -> tuple[Conversation, dict[str, Any]]:
    """The conversation within the prompt budgets, and the cuts made (meta keys `video_truncated`,
    `audio_truncated`; empty when nothing was cut). Parts sharing a clip (a video and its audio
    track) keep sharing one: the frames and the audio are cut on the same object."""
    meta: dict[str, Any] = {}
    clips: dict[int, DecodedClip] = {}  # id(original clip) -> budgeted clip
    videos = [p for m in conv for p in m.parts if p.kind == "video" and _media.usable(p)]
    if counter is not None and videos:
        shapes = [tuple(int(x) for x in p.data.frames.shape[:3]) for p in videos]
        keep = fit_frames(counter, shapes, video_budget(media))
        for p, (n, h, w), k in zip(videos, shapes, keep, strict=True):
            if k < n and id(p.data) not in clips:
                clips[id(p.data)] = _keep_frames(p.data, k)
                meta.setdefault("video_truncated", []).append(
                    {
                        "frames": n,
                        "frames_sent": k,
                        "tokens": counter.video(n, h, w),
                        "tokens_sent": counter.video(k, h, w),
                    }
                )
    left = getattr(media, "max_audio_seconds", None)
    seen: set[int] = set()
    for m in conv:
        for p in m.parts:
            if p.kind != "audio" or not _media.usable(p) or id(p.data) in seen:
                continue
            seen.add(id(p.data))
            clip = clips.get(id(p.data), p.data)
            cut_from = clip.audio_cut_from  # the audio's length before the decoder's max_seconds cut
            if cut_from is None and any(n.startswith("longer than max_seconds") for n in clip.notes):
                cut_from = clip.duration if clip.duration > clip.audio_seconds else None  # a clip cached before it
            if cut_from is not None:
                meta.setdefault("audio_truncated", []).append(
                    {
                        "seconds": round(float(cut_from), 3),
                        "seconds_sent": round(clip.audio_seconds, 3),
                        "by": "max_seconds",
                    }
                )
            if left is None:
                continue
            if clip.audio_seconds > left + 1e-9:
                cut = _cut_audio(clip, left)
                meta.setdefault("audio_truncated", []).append(
                    {
                        "seconds": round(clip.audio_seconds, 3),
                        "seconds_sent": round(cut.audio_seconds, 3),
                        "by": "max_audio_seconds",
                    }
                )
                clips[id(p.data)] = clip = cut
            left = max(0.0, left - clip.audio_seconds)
    if not clips:
        return conv, meta
    out = []
    for m in conv:
        parts = [
            Part(kind=p.kind, text=p.text, path=p.path, span=p.span, data=clips[id(p.data)])
            if id(p.data) in clips
            else p
            for p in m.parts
        ]
        out.append(Message(role=m.role, parts=parts))
    return out, meta


def tokens_by_modality(ids: list[int], placeholders: dict[str, set[int]]) -> dict[str, int]:
    """{"text", "audio", "video"} token counts of one prompt row (padding excluded by the caller):
    audio/video are the family's placeholder tokens, text the rest."""
    audio = sum(1 for t in ids if t in placeholders.get("A", ()))
    video = sum(1 for t in ids if t in placeholders.get("V", ()))
    return {"text": len(ids) - audio - video, "audio": audio, "video": video}


__all__ = ["DEFAULT_VIDEO_TOKENS", "fit", "fit_frames", "tokens_by_modality", "video_budget"]
