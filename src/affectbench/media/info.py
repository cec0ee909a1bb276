"""What a clip will become before it is decoded: stream metadata from the container header (PyAV,
no frame decoded) and the frames, frame size and audio seconds that `decode` (or the qwen-omni-utils
preset) would produce from it under a MediaSpec. Used to plan runs (`affectbench plan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..core.specs import MediaSpec
from . import reference
from .decode import frame_count, target_size


@dataclass(frozen=True)
class StreamInfo:
    """Header facts of a media file: seconds (None when unknown), video size (px) and rate, streams."""

    path: str
    seconds: float | None
    width: int = 0
    height: int = 0
    video_fps: float | None = None
    has_video: bool = False
    has_audio: bool = False
    error: str | None = None


def stream_info(path: str | Path) -> StreamInfo:
    """Open `path` with PyAV and read its header only; a missing/empty/unreadable file gets `error`."""
    p = Path(path)
    if not p.is_file():
        return StreamInfo(str(p), None, error="file not found")
    if p.stat().st_size == 0:
        return StreamInfo(str(p), None, error="file is empty (zero bytes)")
    import av

    try:
        with av.open(str(p)) as c:
            seconds = c.duration / 1_000_000 if c.duration else None
            if seconds is None:
                for s in c.streams:
                    if s.duration and s.time_base:
                        seconds = max(seconds or 0.0, float(s.duration * s.time_base))
            vs = c.streams.video[0] if c.streams.video else None
            rate = float(vs.average_rate) if vs is not None and vs.average_rate else None
            return StreamInfo(
                str(p),
                seconds,
                int(vs.codec_context.width) if vs is not None else 0,
                int(vs.codec_context.height) if vs is not None else 0,
                rate,
                vs is not None,
                bool(c.streams.audio),
            )
    except Exception as e:  # PyAV raises many FFmpegError subclasses
        return StreamInfo(str(p), None, error=f"{type(e).__name__}: {e}")


@dataclass(frozen=True)
class Planned:
    """What a decode of one clip yields: frames (T, H, W) and audio seconds."""

    frames: int
    height: int
    width: int
    audio_seconds: float


def planned_clip(info: StreamInfo, media: MediaSpec, span: tuple[float, float] | None = None) -> Planned:
    """Frames, frame size and audio seconds `decode` (or the preset) makes of a clip with these headers."""
    seconds = info.seconds or 0.0
    if span is not None:
        seconds = max(0.0, min(span[1], seconds or span[1]) - span[0])
    if media.preset == "qwen-omni-utils":
        n = h = w = 0
        if info.has_video and info.video_fps:
            total = max(1, int(round(seconds * info.video_fps)))
            n = reference.smart_nframes(total, info.video_fps)
            lo, hi = reference.frame_budget(n)
            h, w = reference.smart_resize(info.height, info.width, reference.PATCH_FACTOR, lo, hi)
        return Planned(n, h, w, seconds if info.has_audio else 0.0)
    n = h = w = 0
    if info.has_video and info.width and info.height:
        n = frame_count(min(seconds, media.max_seconds), media) if math.isfinite(seconds) else media.max_frames
        w, h = target_size(info.width, info.height, media.max_pixels)
    return Planned(n, h, w, min(seconds, media.max_seconds) if info.has_audio else 0.0)
