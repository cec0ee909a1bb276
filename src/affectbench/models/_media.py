"""Shared `prepare` step for media-taking backends: decode each audio/video/image part (cached).

An audio part may point at a video file: its audio track is decoded (16 kHz mono) and sent as
its own audio part. Parts of modalities excluded by `MediaSpec.modalities` are dropped here, so
no backend can let them through by accident, and a file is decoded only for the streams its
remaining parts use (a `TV` run never decodes an audio track, so a broken one cannot fail it).

A missing modality is handled one way whatever its cause: a video with no audio stream, a file that
holds no sample of the stream a part wants (`EmptyMedia`: zero bytes, a header-only WAV, an audio part
pointing at a file without an audio track), and an audio file that cannot be decoded beside a video or
image of the same conversation that can — the part stays in the conversation without content (`usable`
is False), backends leave it out, and `part_notes` says what was missing and why. An unreadable file
that is the conversation's only media still raises MediaError (the sample fails, naming the file).

A decode yields both the frames and the audio of a file (one pass), so parts of a conversation that
point at the same file and span (a video part and its audio-track part) share one DecodedClip:
one decode without a cache, one cache lookup with it. Backends only read `Part.data`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..core.errors import EmptyMedia, MediaError
from ..core.specs import MediaSpec
from ..core.types import Message, Part
from ..media import DecodedClip, MediaCache, file_identity, get_cache, load_clip
from .base import Conversation

PART_MODALITY = {"text": "T", "audio": "A", "video": "V", "image": "V"}


def media_cache(workspace: Path | None, options: dict) -> MediaCache | None:
    """The workspace's shared media cache (workspace/cache/media), or None without a workspace."""
    if workspace is None or options.get("media_cache") is False:
        return None
    return get_cache(Path(workspace) / "cache" / "media", options.get("media_cache_bytes"))


def prepare_media(conv: Conversation, media: MediaSpec, cache: MediaCache | None) -> Conversation:
    """A copy of `conv` whose media parts carry a DecodedClip in `.data` (MediaError propagates)."""

    def todo(p: Part) -> bool:
        return p.kind != "text" and p.path is not None and not isinstance(p.data, DecodedClip)

    def key(p: Part) -> tuple[str, tuple[float, float] | None]:
        return (str(Path(p.path).resolve()), tuple(p.span) if p.span else None)

    # which streams each (file, span) must give: only those of the parts that will be sent
    wants: dict[tuple[str, tuple[float, float] | None], set[str]] = {}
    for msg in conv:
        for p in msg.parts:
            if todo(p) and PART_MODALITY[p.kind] in media.modalities:
                wants.setdefault(key(p), set()).add("audio" if p.kind == "audio" else "video")
    out: list[Message] = []
    clips: dict[tuple[str, tuple[float, float] | None], DecodedClip] = {}  # one decode per (file, span)
    failed: dict[tuple[str, tuple[float, float] | None], MediaError] = {}  # audio-only files that did not decode
    for msg in conv:
        parts: list[Part] = []
        for p in msg.parts:
            if not todo(p):
                parts.append(p)
                continue
            if PART_MODALITY[p.kind] not in media.modalities:
                continue
            k = key(p)
            clip = clips.get(k)
            if clip is None and k not in failed:
                try:
                    clip = clips[k] = _decode_part(p, media, cache, "video" in wants[k], "audio" in wants[k])
                except MediaError as e:
                    if wants[k] != {"audio"}:  # a video file that cannot be read fails the sample
                        raise
                    failed[k] = e
            if clip is None:
                clip = _missing(media, f"unreadable: {failed[k]}")
            parts.append(Part(kind=p.kind, text=p.text, path=p.path, span=p.span, data=clip))
        out.append(Message(role=msg.role, parts=parts))
    if failed and not any(usable(p) for m in out for p in m.parts if p.kind != "text"):
        raise next(iter(failed.values()))  # nothing else to send: the unreadable file costs the sample
    return out


def _missing(media: MediaSpec, why: str) -> DecodedClip:
    return DecodedClip(None, np.zeros(0, np.float32), None, media.sample_rate, 0.0, False, False, [why])


def _decode_part(p: Part, media: MediaSpec, cache: MediaCache | None, video: bool, audio: bool) -> DecodedClip:
    """Decode the streams a part's file must give; a file holding no sample of them (zero bytes, header
    only, no such stream: `EmptyMedia`) is a missing modality, not an error."""
    path = Path(p.path or "")
    if path.is_file() and path.stat().st_size == 0:
        return _missing(media, "empty file")
    try:
        if cache is not None:
            return cache.get(path, media, p.span, video=video, audio=audio)
        return load_clip(path, media, p.span, video=video, audio=audio)
    except EmptyMedia as e:
        return _missing(media, f"no samples ({e})")


def usable(part: Part) -> bool:
    """Whether a media part has the content its kind needs (a video without audio has no audio part)."""
    clip = part.data
    if not isinstance(clip, DecodedClip):
        return False
    return clip.has_audio if part.kind == "audio" else clip.has_video


def part_notes(conv: Conversation) -> list[str]:
    """What was missing, silent or trimmed in the conversation's media, for Generation.meta."""
    notes = []
    for msg in conv:
        for p in msg.parts:
            if isinstance(p.data, DecodedClip):
                notes += [f"{p.kind} {Path(p.path or '').name}: {n}" for n in p.data.notes]
                if not usable(p):
                    notes.append(f"{p.kind} {Path(p.path or '').name}: missing, not sent")
    return notes


def text_modality(conv: Conversation) -> bool:
    return any(p.kind == "text" and (p.text or "").strip() for m in conv for p in m.parts)


def folder_identity(path: str | Path, patterns: tuple[str, ...]) -> str:
    """Hash of the files in a local model/adapter folder that define its weights and config."""
    root = Path(path)
    h = hashlib.sha256()
    for pattern in patterns:
        for f in sorted(root.glob(pattern)):
            if f.is_file():
                h.update(f.name.encode())
                h.update(file_identity(f).encode())
    return h.hexdigest()[:16]


# ---- what the processor gets and what it did (hf) -----------------------------------------------


def clip_rate(clip: DecodedClip, default: float) -> float:
    """A video's effective sampling rate (frames used / seconds covered), for its time axis."""
    return float(clip.fps) if clip.fps else float(default)


def takes_cap_pixels_per_frame(proc) -> bool:
    """Whether the processor's video processor has the `cap_pixels_per_frame` switch (Qwen2-VL family)."""
    vp = getattr(proc, "video_processor", None)
    kinds = getattr(getattr(vp, "valid_kwargs", None), "__annotations__", {})
    return "cap_pixels_per_frame" in kinds


def audio_window(proc) -> int | None:
    """Samples the processor's audio feature extractor keeps (Whisper-style: chunk_length x rate), or None."""
    fe = getattr(proc, "feature_extractor", None)
    n = getattr(fe, "n_samples", None)
    return int(n) if n else None


def fit_audio(audio: np.ndarray, window: int | None, rate: int) -> tuple[np.ndarray, dict | None]:
    """`audio` cut to the feature extractor's `window` (samples), and a record of the cut (None when whole).

    The extractor cuts longer audio itself without a trace; cutting here makes the cut visible:
    `{"seconds": original, "seconds_sent": kept, "by": "processor window"}` goes to the prediction's meta as
    `audio_truncated` (the shape `models.budgets` uses for every cut).
    """
    if window is None or len(audio) <= window:
        return audio, None
    cut = {"seconds": round(len(audio) / rate, 3), "seconds_sent": round(window / rate, 3), "by": "processor window"}
    return audio[:window], cut


def audio_sent(clip: DecodedClip, window: int | None) -> tuple[np.ndarray, dict | None]:
    """The audio of `clip` to send, cut to the extractor's `window` (`fit_audio`), and that cut's record
    (None when whole). The decoder's `max_seconds` cut (`DecodedClip.audio_cut_from`, e.g. Qwen2-Audio's
    30 s recipe) is recorded once, by `models.budgets.fit` (`by: "max_seconds"`), not here."""
    return fit_audio(clip.audio, window, clip.sample_rate)


def videos_carry_audio(conv: Conversation) -> bool | None:
    """Whether every usable video part of `conv` has its own audio track among the usable audio parts (same
    file and span, one decode: `prepare_media`); None when `conv` has no usable video. Only such a
    conversation can be interleaved by time (a mute clip's video has no audio to interleave)."""
    tracks = {
        (str(p.path), tuple(p.span) if p.span else None)
        for m in conv
        for p in m.parts
        if p.kind == "audio" and usable(p)
    }
    videos = [
        (str(p.path), tuple(p.span) if p.span else None)
        for m in conv
        for p in m.parts
        if p.kind == "video" and usable(p)
    ]
    return all(v in tracks for v in videos) if videos else None


def audio_of_videos(conv: Conversation) -> tuple[Conversation, set[int]]:
    """For interleaving audio with video frames by time (Qwen2.5-Omni's TMRoPE): the conversation without
    the audio parts that are the audio track of one of its video parts (same file and span), and the ids
    (`id(part)`) of the video parts whose audio goes with them. Such a video part's clip holds that audio
    (`prepare_media` decodes a file and span once for both parts)."""
    videos: dict[tuple[str, tuple | None], Part] = {}
    for msg in conv:
        for p in msg.parts:
            if p.kind == "video" and usable(p):
                videos.setdefault((str(p.path), tuple(p.span) if p.span else None), p)
    with_audio: set[int] = set()
    out: list[Message] = []
    for msg in conv:
        parts = []
        for p in msg.parts:
            v = videos.get((str(p.path), tuple(p.span) if p.span else None)) if p.kind == "audio" else None
            if v is not None and usable(p) and v.data is p.data:
                with_audio.add(id(v))
                continue
            parts.append(p)
        out.append(Message(role=msg.role, parts=parts))
    return out, with_audio


def collate(features: list, pad_id: int):
    """Join per-conversation processor outputs into one batch: input_ids / attention_mask left-padded,
    every other tensor concatenated along dim 0 (per-item or per-patch rows) over the rows that have it
    (a row without video has no `pixel_values_videos`), lists joined."""
    import torch

    keys = list(dict.fromkeys(k for f in features for k in f))  # a text-only row has no media tensors
    out = {}
    width = max(int(f["input_ids"].shape[1]) for f in features)
    for k in keys:
        vals = [f[k] for f in features if k in f]
        if k in ("input_ids", "attention_mask"):
            fill = pad_id if k == "input_ids" else 0
            rows = []
            for v in vals:
                pad = torch.full((v.shape[0], width - v.shape[1]), fill, dtype=v.dtype)
                rows.append(torch.cat([pad, v], dim=1))
            out[k] = torch.cat(rows, dim=0)
        elif torch.is_tensor(vals[0]):
            if vals[0].dim() > 1 and len({tuple(v.shape[1:]) for v in vals}) > 1:
                # per-call padding (Qwen3-Omni's input_features and feature_attention_mask pad to the call's
                # longest clip): right-pad with zeros to the batch's longest; a zero mask marks it invalid
                size = [max(int(v.shape[d]) for v in vals) for d in range(1, vals[0].dim())]
                vals = [
                    torch.nn.functional.pad(
                        v, [x for d in reversed(range(1, v.dim())) for x in (0, size[d - 1] - v.shape[d])]
                    )
                    for v in vals
                ]
            out[k] = torch.cat(vals, dim=0)
        elif isinstance(vals[0], list):
            out[k] = [x for v in vals for x in v]
        else:
            out[k] = vals[0]
    return out
