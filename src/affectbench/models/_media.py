"""Shared `prepare` step for media-taking backends: decode each audio/video/image part (cached).

An audio part may point at a video file: its audio track is decoded (16 kHz mono) and sent as
its own audio part. Parts of modalities excluded by `MediaSpec.modalities` are dropped here, so
no backend can let them through by accident, and a file is decoded only for the streams its
remaining parts use (a `TV` run never decodes an audio track, so a broken one cannot fail it).

A missing modality is handled one way whatever its cause: a video with no audio stream, a separate
audio file of zero bytes, an audio file with no audio stream — the part stays in the conversation
without content (`usable` is False), backends leave it out, and `part_notes` says what was missing.

A decode yields both the frames and the audio of a file (one pass), so parts of a conversation that
point at the same file and span (a video part and its audio-track part) share one DecodedClip:
one decode without a cache, one cache lookup with it. Backends only read `Part.data`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..media import DecodedClip, MediaCache, file_identity, get_cache, load_clip
from ..specs import MediaSpec
from ..types import Message, Part
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
            if clip is None:
                clip = clips[k] = _decode_part(p, media, cache, "video" in wants[k], "audio" in wants[k])
            parts.append(Part(kind=p.kind, text=p.text, path=p.path, span=p.span, data=clip))
        out.append(Message(role=msg.role, parts=parts))
    return out


def _decode_part(p: Part, media: MediaSpec, cache: MediaCache | None, video: bool, audio: bool) -> DecodedClip:
    """Decode the streams a part's file must give; a zero-byte file is a missing modality, not an error."""
    path = Path(p.path or "")
    if path.is_file() and path.stat().st_size == 0:
        return DecodedClip(None, np.zeros(0, np.float32), None, media.sample_rate, 0.0, False, False, ["empty file"])
    if cache is not None:
        return cache.get(path, media, p.span, video=video, audio=audio)
    return load_clip(path, media, p.span, video=video, audio=audio)


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
