"""Decode a clip (or a segment of it) to sampled RGB frames and 16 kHz mono audio with PyAV.

Bad-media rules (documented, tested):
- no audio stream      -> `has_audio=False`, note "no audio stream"; the sample still runs without A.
- no video stream      -> `has_video=False` (audio files), note "no video stream" when video was wanted.
- silent audio         -> kept as is, note "silent audio".
- zero-length / unreadable / span outside the clip -> `MediaError` naming the path and the reason;
  the runner stores that sample as an error and goes on.
- longer than `max_seconds` -> frames are sampled uniformly over the whole window within the frame
  budget (`fps * max_seconds`, `max_frames`) and audio is truncated at `max_seconds`; noted.
- frame count: `fps * seconds`, at least `min_frames` (4, as Qwen's reference preprocessing) and at
  most `max_frames`; a clip with fewer distinct frames repeats them (frame_times say so).
- rotation: the container's display matrix (a phone clip's `rotate=90`) is applied, so frames come out
  upright as a player shows them (as ffmpeg's autorotate does); `rotation` records it, noted.
- truncated / corrupt tail (the header promises more than decodes) -> what decodes is kept, the stream
  ends there, and a note "truncated" says where; the last good frame fills later frame targets.
- only the streams asked for are decoded (`video=`, `audio=`): a broken audio track cannot fail a
  video-only run.

Speed (bench/bench_media.py, "decode vs raw PyAV"): one `VideoReformatter` per decode (a frame's own
`to_ndarray(width=, height=)` builds a new scaler every call, 2-4x the cost), only the sampled frames
are converted (each at most once), audio already at the target rate and mono is passed through
without a resampler graph, and the codec's own threads are used only for large frames (on small
clips they cost more than they save; the engine's prefetch pool decodes clips in parallel anyway).
"""

from __future__ import annotations

import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import MediaError, require
from ..core.specs import MediaSpec

_COUNT_LOCK = threading.Lock()
_DECODES = 0
THREADED_PIXELS = 640 * 480  # codec threads from this frame area up (and with more than 2 cores)


def decode_count() -> int:
    """How many times a file was actually decoded in this process (cache hits do not count)."""
    return _DECODES


def _count() -> None:
    global _DECODES
    with _COUNT_LOCK:
        _DECODES += 1


@dataclass
class DecodedClip:
    """Sampled frames (T,H,W,3 uint8) with their times (s, from the segment start) and mono float32 audio."""

    frames: np.ndarray | None
    frame_times: np.ndarray
    audio: np.ndarray | None
    sample_rate: int
    duration: float
    has_video: bool
    has_audio: bool
    notes: list[str] = field(default_factory=list)
    rotation: int = 0  # degrees counter-clockwise applied from the container's display matrix
    fps: float | None = None  # the frames' effective sampling rate: frames used / seconds covered

    @property
    def truncated(self) -> bool:
        """Whether a stream broke off or ended before its header's duration (see the module rules)."""
        return any(n.startswith("truncated") for n in self.notes)

    @property
    def audio_seconds(self) -> float:
        return 0.0 if self.audio is None else len(self.audio) / self.sample_rate


def _target_size(w: int, h: int, max_pixels: int) -> tuple[int, int]:
    """Largest even size with the same aspect whose area is within `max_pixels`."""
    if w * h <= max_pixels:
        return w - w % 2, h - h % 2
    s = math.sqrt(max_pixels / (w * h))
    return max(2, int(w * s) // 2 * 2), max(2, int(h * s) // 2 * 2)


def _threaded(vs) -> bool:
    """Whether the codec's own threads pay off: large frames on a machine with cores to spare."""
    cc = vs.codec_context
    return (cc.width or 0) * (cc.height or 0) >= THREADED_PIXELS and (os.cpu_count() or 1) > 2


class _Converter:
    """Sampled frame -> RGB array at the target size, with one scaler for the whole decode.

    The same frame kept for several targets (a clip with fewer frames than the budget) is converted once.
    """

    def __init__(self, rotation: int = 0) -> None:
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()
        self._frame = None
        self._array: np.ndarray | None = None
        self.rotation = rotation

    def __call__(self, frame, size: tuple[int, int]) -> np.ndarray:
        if frame is not self._frame:
            rgb = self._reformatter.reformat(frame, width=size[0], height=size[1], format="rgb24")
            arr = rgb.to_ndarray()
            if self.rotation:
                arr = np.ascontiguousarray(np.rot90(arr, self.rotation // 90))
            self._frame, self._array = frame, arr
        return self._array


def frame_rotation(frame) -> int:
    """The display-matrix rotation of a decoded frame, counter-clockwise degrees in {0, 90, 180, 270}.

    PyAV's `VideoFrame.rotation` is FFmpeg's `av_display_rotation_get` (counter-clockwise); the upright
    picture is `np.rot90(array, rotation // 90)` — what `ffmpeg` (autorotate) writes.
    """
    r = getattr(frame, "rotation", 0) or 0
    return int(round(float(r) / 90.0)) * 90 % 360


def _mono_samples(frame, rate: int, path: Path) -> np.ndarray:
    """The float32 samples of a mono fltp frame (a view of its one plane; `to_ndarray` would vstack planes).

    Also the guard for the resampler's passthrough: PyAV decides it on the first frame only, so a stream
    that changes format mid-way would otherwise slip through unconverted.
    """
    if frame.sample_rate != rate or frame.format.name != "fltp" or len(frame.planes) != 1:
        raise MediaError(f"audio stream of {path} changes format mid-stream; re-encode it (e.g. with ffmpeg)")
    return np.frombuffer(frame.planes[0], np.float32, count=frame.samples)


class _Broken(Exception):
    """A stream's packet failed to decode: the file is truncated or corrupt from here on."""

    def __init__(self, frames: list[tuple[Any, float]], cause: BaseException) -> None:
        super().__init__(str(cause))
        self.frames, self.cause = frames, cause


def _decode_until(packet, end: float) -> tuple[list[tuple[Any, float]], bool]:
    """A packet's frames that start before `end` (s), with their times, and whether `end` was reached.

    Raises `_Broken` (carrying the frames decoded before the failure) when the codec rejects the packet.
    """
    out: list[tuple[Any, float]] = []
    try:
        frames = packet.decode()
    except Exception as e:  # av.error.InvalidDataError and kin: a cut or damaged packet
        raise _Broken(out, e) from e
    for fr in frames:
        t = fr.time
        t = 0.0 if t is None else float(t)
        if t >= end:
            return out, True
        out.append((fr, t))
    return out, False


def decode(
    path: str | Path,
    media: MediaSpec | None = None,
    span: tuple[float, float] | None = None,
    *,
    video: bool = True,
    audio: bool = True,
) -> DecodedClip:
    """Decode `path` (mp4/avi/mkv/wav/flac/mp3/...) under the budgets of `media`; see the module rules."""
    av = require("av", "media", "media decoding")
    media = media or MediaSpec()
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"media file not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"media file is empty (zero bytes): {path}")
    _count()
    notes: list[str] = []
    try:
        container = av.open(str(path))
    except Exception as e:  # av raises many error types (InvalidDataError, OSError...)
        raise MediaError(f"cannot open media file {path}: {e}") from e
    try:
        return _decode_open(av, container, path, media, span, video, audio, notes)
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"cannot decode media file {path}: {type(e).__name__}: {e}") from e
    finally:
        container.close()


def _decode_open(av, container, path: Path, media: MediaSpec, span, want_video: bool, want_audio: bool, notes):
    vs = container.streams.video[0] if container.streams.video else None
    aus = container.streams.audio[0] if container.streams.audio else None
    if vs is not None and want_video and vs.codec_context is None:
        vs = None
    if vs is None and want_video:
        notes.append("no video stream")
    if aus is None and want_audio:
        notes.append("no audio stream")
    vs = vs if want_video else None
    aus = aus if want_audio else None

    duration = float(container.duration / 1e6) if container.duration else None
    start = max(0.0, float(span[0])) if span else 0.0
    end = float(span[1]) if span else (duration if duration is not None else math.inf)
    if duration is not None and end > duration + 0.05:
        end = duration
    if span and (end <= start):
        raise MediaError(f"span {span} is outside or empty for {path} (duration {duration or 0:.2f}s)")
    window = end - start
    if math.isfinite(window) and window > media.max_seconds:
        notes.append(
            f"longer than max_seconds ({window:.1f}s > {media.max_seconds}s): frames subsampled, audio truncated"
        )
    audio_end = min(end, start + media.max_seconds)

    # frame targets: uniform over the whole window, fps * min(window, max_seconds) frames within
    # [min_frames, max_frames]
    targets = None
    if vs is not None and math.isfinite(window):
        n = frame_count(min(window, media.max_seconds), media)
        targets = start + (np.arange(n) + 0.5) * (window / n)
    if vs is not None and targets is None:  # unknown duration: take frames at fps until the budget is full
        targets = start + (np.arange(media.max_frames) + 0.5) / media.fps
    if vs is not None and _threaded(vs):
        vs.thread_type = "AUTO"

    if start > 0:
        container.seek(int(start * 1e6), backward=True, any_frame=False)

    streams = [s for s in (vs, aus) if s is not None]
    frames: list[np.ndarray] = []
    times: list[float] = []
    chunks: list[np.ndarray] = []
    audio_t0: float | None = None
    audio_last: float | None = None  # start time of the last audio frame decoded
    # mono planar == mono packed float32; asking for "fltp" lets PyAV pass a frame that is already
    # mono float at the target rate straight through instead of pushing it through a filter graph
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=media.sample_rate) if aus is not None else None
    to_rgb = _Converter()
    size = None
    ti = 0
    video_done = vs is None
    audio_done = aus is None
    video_reached = audio_reached = False  # the stream reached the window's end (not cut short)
    broken: dict[str, str] = {}  # stream kind -> why it broke off
    last_frame = None
    last_time = None
    goals = targets.tolist() if targets is not None else []  # python floats: cheaper to compare per frame
    n_goals = len(goals)
    if streams:
        goal = goals[0] if n_goals else math.inf
        v_index = vs.index if vs is not None else -1
        rate = media.sample_rate
        packets = container.demux(*streams)
        while not (video_done and audio_done):
            try:
                packet = next(packets, None)
            except Exception as e:  # the demuxer hit a cut or damaged part of the file
                for kind, done in (("video", video_done), ("audio", audio_done)):
                    if not done:
                        broken[kind] = f"{type(e).__name__}: {e}"
                break
            if packet is None:
                break
            is_video = packet.stream_index == v_index
            if video_done if is_video else audio_done:
                continue
            try:
                decoded, reached_end = _decode_until(packet, end if is_video else audio_end)
            except _Broken as b:
                decoded, reached_end = b.frames, True
                broken["video" if is_video else "audio"] = f"{type(b.cause).__name__}: {b.cause}"
            if is_video:
                video_done = reached_end
                video_reached = video_reached or (reached_end and "video" not in broken)
                for fr, t in decoded:
                    if size is None:
                        size = _target_size(fr.width, fr.height, media.max_pixels)
                        to_rgb.rotation = frame_rotation(fr)
                    # keep the last frame at or before each target time; only those frames are converted
                    if t > goal and last_frame is not None:
                        while ti < n_goals and t > goals[ti]:
                            frames.append(to_rgb(last_frame, size))
                            times.append(last_time - start)
                            ti += 1
                        goal = goals[ti] if ti < n_goals else math.inf
                    if ti >= n_goals:
                        video_done = video_reached = True
                        break
                    last_frame, last_time = fr, t
            else:
                audio_done = reached_end
                audio_reached = audio_reached or (reached_end and "audio" not in broken)
                for fr, t in decoded:
                    audio_last = t
                    for rf in resampler.resample(fr):
                        if audio_t0 is None:
                            audio_t0 = float(rf.time) if rf.time is not None else t
                        chunks.append(_mono_samples(rf, rate, path))
        if not audio_done and resampler is not None:
            for rf in resampler.resample(None):
                chunks.append(_mono_samples(rf, rate, path))
        if last_frame is not None and ti < n_goals:
            # targets past the last decoded frame (end of stream): repeat the last frame
            while ti < n_goals:
                frames.append(to_rgb(last_frame, size))
                times.append(last_time - start)
                ti += 1

    audio = None
    if chunks:
        wav = np.concatenate(chunks).astype(np.float32, copy=False)
        t0 = audio_t0 or 0.0
        a = max(0, int(round((start - t0) * media.sample_rate)))
        b = int(round((audio_end - t0) * media.sample_rate)) if math.isfinite(audio_end) else len(wav)
        audio = np.ascontiguousarray(wav[a:b])
        if audio.size == 0:
            audio = None
        elif float(np.max(np.abs(audio))) < 1e-4:
            notes.append("silent audio")
    if audio is None and aus is not None and "audio" not in broken:
        notes.append("no audio in the segment")

    # a stream that broke off, or ended well before the header's end (a byte-truncated file), is noted
    if vs is not None:
        _note_truncation(notes, "video", broken.get("video"), video_reached, last_time, end, _frame_step(vs))
    if aus is not None:
        _note_truncation(notes, "audio", broken.get("audio"), audio_reached, audio_last, audio_end, 0.1)
    if to_rgb.rotation:
        notes.append(f"rotated {to_rgb.rotation} degrees (container display matrix)")

    arr = np.stack(frames) if frames else None
    if arr is None and audio is None:
        where = f" in span {span}" if span else ""
        why = "; ".join(f"{k}: {v}" for k, v in broken.items())
        raise MediaError(
            f"no decodable video or audio{where} in {path} (zero-length or unreadable{'; ' + why if why else ''})"
        )
    if vs is not None and arr is None:
        notes.append("no video frames in the segment")
    seg = window if math.isfinite(window) else (len(audio) / media.sample_rate if audio is not None else 0.0)
    return DecodedClip(
        frames=arr,
        frame_times=np.asarray(times, np.float32),
        audio=audio,
        sample_rate=media.sample_rate,
        duration=float(seg),
        has_video=arr is not None,
        has_audio=audio is not None,
        notes=notes,
        rotation=to_rgb.rotation if arr is not None else 0,
        fps=(len(arr) / seg if seg > 0 else float(media.fps)) if arr is not None else None,
    )


def frame_count(seconds: float, media: MediaSpec) -> int:
    """Frames sampled from `seconds` of video: `fps * seconds` rounded, within [min_frames, max_frames]."""
    n = max(int(media.min_frames), round(seconds * media.fps))
    return max(1, min(n, int(media.max_frames)))


def _frame_step(vs) -> float:
    rate = vs.average_rate or vs.guessed_rate
    return 1.0 / float(rate) if rate else 0.1


def _note_truncation(notes, kind: str, broke: str | None, reached: bool, last: float | None, end: float, step: float):
    """Note a stream that broke off (`broke`) or stopped more than a few frames before `end` (s)."""
    if broke is not None:
        at = f" after {last:.2f}s" if last is not None else " at its start"
        notes.append(f"truncated {kind}: decoding broke off{at} of {end:.2f}s ({broke})")
    elif not reached and last is not None and math.isfinite(end) and last < end - max(0.25, 3 * step):
        notes.append(f"truncated {kind}: ends at {last:.2f}s, the header promises {end:.2f}s")
