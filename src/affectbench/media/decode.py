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
- truncated / corrupt tail (a stream's own header promises more than decodes) -> what decodes is kept,
  the stream ends there, and a note "truncated" says where; the last good frame fills later frame
  targets. A stream is judged by its own stated duration, not the container's: an audio track that
  ends before the video is whole.
- a file holding no sample of the streams asked for (zero bytes, a header-only WAV, audio asked of a
  file without an audio track) -> `EmptyMedia` (a MediaError); backends take it as a missing modality.
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

from ..core.errors import EmptyMedia, MediaError, require
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
    audio_cut_from: float | None = None  # seconds of audio the window held before `max_seconds` cut it (None: whole)

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
        raise EmptyMedia(f"media file is empty (zero bytes): {path}")
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
    """Decode the wanted streams of an open container over the span's window into a DecodedClip
    (the module rules); notes are appended to `notes`, in the order the rules are checked."""
    vs, aus = _pick_streams(container, want_video, want_audio, notes)
    start, end, audio_end, window = _window(container, span, media, path, notes)
    video = audio_in = None
    if vs is not None:
        video = _VideoSampler(vs, _frame_targets(start, window, media), start, end, media.max_pixels)
        if _threaded(vs):
            vs.thread_type = "AUTO"
    if start > 0:
        container.seek(int(start * 1e6), backward=True, any_frame=False)
    if aus is not None:
        audio_in = _AudioCollector(av, aus, audio_end, media.sample_rate, path)
    readers = [r for r in (video, audio_in) if r is not None]
    broken = _demux(container, readers) if readers else {}

    audio = audio_in.cut(start, notes) if audio_in is not None else None
    cut_from = None
    if audio is not None and audio_end < end:  # max_seconds cut the audio: how long it was, as its header says
        own = _own_end(aus, end)
        cut_from = round((own if own is not None else end) - start, 3)
        cut_from = cut_from if math.isfinite(cut_from) and cut_from > audio_end - start else None
    if audio is None and aus is not None and "audio" not in broken:
        notes.append("no audio in the segment")
    # a stream that broke off, or ended well before its own stated end (a byte-truncated file), is noted
    if video is not None:
        own = _own_end(vs, end)
        _note_truncation(notes, "video", broken.get("video"), video.reached, video.last_time, own, _frame_step(vs))
    if audio_in is not None:
        own = _own_end(aus, audio_end)
        _note_truncation(notes, "audio", broken.get("audio"), audio_in.reached, audio_in.last, own, 0.1)
    rotation = video.to_rgb.rotation if video is not None else 0
    if rotation:
        notes.append(f"rotated {rotation} degrees (container display matrix)")
    clip = _clip(video, audio, rotation, window, media, span, path, broken, notes)
    clip.audio_cut_from = cut_from
    return clip


def _pick_streams(container, want_video: bool, want_audio: bool, notes: list[str]):
    """(video stream or None, audio stream or None): the first of each kind that is wanted; a wanted
    stream that is missing (or a video stream without a codec) is noted."""
    vs = container.streams.video[0] if container.streams.video else None
    aus = container.streams.audio[0] if container.streams.audio else None
    if vs is not None and want_video and vs.codec_context is None:
        vs = None
    if vs is None and want_video:
        notes.append("no video stream")
    if aus is None and want_audio:
        notes.append("no audio stream")
    return (vs if want_video else None), (aus if want_audio else None)


def _window(container, span, media: MediaSpec, path: Path, notes: list[str]) -> tuple[float, float, float, float]:
    """(start, end, audio end, window length) in seconds of the part to decode: `span` clipped to the
    header's duration (end inf when neither is known), audio cut at `max_seconds` (noted).
    Raises MediaError when the span is empty or outside the clip."""
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
    return start, end, min(end, start + media.max_seconds), window


def _frame_targets(start: float, window: float, media: MediaSpec) -> list[float]:
    """Frame target times (s): uniform over the whole window, `frame_count(min(window, max_seconds))`
    of them; with an unknown duration, at `fps` from `start` until `max_frames` (python floats:
    cheaper to compare per frame)."""
    if math.isfinite(window):
        n = frame_count(min(window, media.max_seconds), media)
        return (start + (np.arange(n) + 0.5) * (window / n)).tolist()
    return (start + (np.arange(media.max_frames) + 0.5) / media.fps).tolist()


class _VideoSampler:
    """Keeps the last decoded frame at or before each target time and converts only those frames.

    State of the video stream for `_demux`: `end` (s), `done` (no more packets needed) and `reached`
    (the stream got to the window's end instead of being cut short).
    """

    kind = "video"

    def __init__(self, stream, goals: list[float], start: float, end: float, max_pixels: int) -> None:
        self.stream, self.goals, self.start, self.end, self.max_pixels = stream, goals, start, end, max_pixels
        self.done = self.reached = False
        self.to_rgb = _Converter()
        self.size: tuple[int, int] | None = None
        self.ti = 0
        self.goal = goals[0] if goals else math.inf
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.last_frame = None
        self.last_time: float | None = None

    def feed(self, decoded: list[tuple[Any, float]]) -> bool:
        """Take a packet's (frame, time) pairs; returns True once every target has its frame."""
        n_goals = len(self.goals)
        for fr, t in decoded:
            if self.size is None:
                self.size = _target_size(fr.width, fr.height, self.max_pixels)
                self.to_rgb.rotation = frame_rotation(fr)
            if t > self.goal and self.last_frame is not None:
                while self.ti < n_goals and t > self.goals[self.ti]:
                    self._take_last()
                self.goal = self.goals[self.ti] if self.ti < n_goals else math.inf
            if self.ti >= n_goals:
                return True
            self.last_frame, self.last_time = fr, t
        return False

    def close(self) -> None:
        """End of stream: targets past the last decoded frame repeat it."""
        if self.last_frame is not None:
            while self.ti < len(self.goals):
                self._take_last()

    def _take_last(self) -> None:
        self.frames.append(self.to_rgb(self.last_frame, self.size))
        self.times.append(self.last_time - self.start)
        self.ti += 1


class _AudioCollector:
    """Resamples the audio stream's frames to mono float32 at `rate` and keeps the chunks; the same
    `end` / `done` / `reached` state for `_demux` as `_VideoSampler`."""

    kind = "audio"

    def __init__(self, av, stream, end: float, rate: int, path: Path) -> None:
        self.stream, self.end, self.rate, self.path = stream, end, rate, path
        self.done = self.reached = False
        # mono planar == mono packed float32; asking for "fltp" lets PyAV pass a frame that is already
        # mono float at the target rate straight through instead of pushing it through a filter graph
        self.resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        self.chunks: list[np.ndarray] = []
        self.t0: float | None = None
        self.last: float | None = None  # start time of the last audio frame decoded

    def feed(self, decoded: list[tuple[Any, float]]) -> bool:
        """Resample a packet's (frame, time) pairs; never asks to stop early (returns False)."""
        for fr, t in decoded:
            self.last = t
            for rf in self.resampler.resample(fr):
                if self.t0 is None:
                    self.t0 = float(rf.time) if rf.time is not None else t
                self.chunks.append(_mono_samples(rf, self.rate, self.path))
        return False

    def close(self) -> None:
        """A stream that ended before the window's end: flush what the resampler still holds."""
        if not self.done:
            for rf in self.resampler.resample(None):
                self.chunks.append(_mono_samples(rf, self.rate, self.path))

    def cut(self, start: float, notes: list[str]) -> np.ndarray | None:
        """The samples from `start` to `end` (s); None when there are none; silence is noted."""
        if not self.chunks:
            return None
        wav = np.concatenate(self.chunks).astype(np.float32, copy=False)
        t0 = self.t0 or 0.0
        a = max(0, int(round((start - t0) * self.rate)))
        b = int(round((self.end - t0) * self.rate)) if math.isfinite(self.end) else len(wav)
        audio = np.ascontiguousarray(wav[a:b])
        if audio.size == 0:
            return None
        if float(np.max(np.abs(audio))) < 1e-4:
            notes.append("silent audio")
        return audio


def _demux(container, readers: list[_VideoSampler | _AudioCollector]) -> dict[str, str]:
    """Feed each reader its stream's packets until every reader is done or the file ends; returns
    {stream kind: why it broke off} for streams cut by a damaged packet or demuxer error."""
    by_index = {r.stream.index: r for r in readers}
    broken: dict[str, str] = {}
    packets = container.demux(*(r.stream for r in readers))
    while not all(r.done for r in readers):
        try:
            packet = next(packets, None)
        except Exception as e:  # the demuxer hit a cut or damaged part of the file
            for r in readers:
                if not r.done:
                    broken[r.kind] = f"{type(e).__name__}: {e}"
            break
        if packet is None:
            break
        r = by_index.get(packet.stream_index)
        if r is None or r.done:
            continue
        try:
            decoded, reached_end = _decode_until(packet, r.end)
        except _Broken as b:
            decoded, reached_end = b.frames, True
            broken[r.kind] = f"{type(b.cause).__name__}: {b.cause}"
        r.done = reached_end
        r.reached = r.reached or (reached_end and r.kind not in broken)
        if r.feed(decoded):
            r.done = r.reached = True
    for r in readers:
        r.close()
    return broken


def _clip(video, audio, rotation: int, window: float, media: MediaSpec, span, path: Path, broken, notes):
    """The DecodedClip of what was decoded; when neither frames nor audio came out, MediaError naming the
    path and why each stream broke, or EmptyMedia when nothing broke (the streams asked for hold no sample)."""
    arr = np.stack(video.frames) if video is not None and video.frames else None
    if arr is None and audio is None:
        where = f" in span {span}" if span else ""
        if not broken:
            raise EmptyMedia(f"no video or audio samples{where} in {path} ({'; '.join(notes) or 'header only'})")
        why = "; ".join(f"{k}: {v}" for k, v in broken.items())
        raise MediaError(f"no decodable video or audio{where} in {path} (unreadable; {why})")
    if video is not None and arr is None:
        notes.append("no video frames in the segment")
    seg = window if math.isfinite(window) else (len(audio) / media.sample_rate if audio is not None else 0.0)
    return DecodedClip(
        frames=arr,
        frame_times=np.asarray(video.times if video is not None else [], np.float32),
        audio=audio,
        sample_rate=media.sample_rate,
        duration=float(seg),
        has_video=arr is not None,
        has_audio=audio is not None,
        notes=notes,
        rotation=rotation if arr is not None else 0,
        fps=(len(arr) / seg if seg > 0 else float(media.fps)) if arr is not None else None,
    )


def frame_count(seconds: float, media: MediaSpec) -> int:
    """Frames sampled from `seconds` of video: `fps * seconds` rounded, within [min_frames, max_frames]."""
    n = max(int(media.min_frames), round(seconds * media.fps))
    return max(1, min(n, int(media.max_frames)))


def target_size(w: int, h: int, max_pixels: int) -> tuple[int, int]:
    """(width, height) a decoded frame of a w x h source gets under `max_pixels` (what `decode` uses)."""
    return _target_size(w, h, max_pixels)


def _frame_step(vs) -> float:
    rate = vs.average_rate or vs.guessed_rate
    return 1.0 / float(rate) if rate else 0.1


def _own_end(stream, end: float) -> float | None:
    """Where `stream` should stop within a window ending at `end` (s): its own stated end (start_time +
    duration, in its time base), capped by `end`; None when its header states no duration of its own.

    A stream is judged against its own header, not the container's: an audio track that simply ends
    before the video (the container's duration is the longest stream's) is whole, not truncated.
    """
    if not stream.duration or not stream.time_base:
        return None
    own = float(((stream.start_time or 0) + stream.duration) * stream.time_base)
    return min(own, end)


def _note_truncation(notes, kind: str, broke: str | None, reached: bool, last: float | None, end, step: float):
    """Note a stream that broke off (`broke`) or stopped more than a few frames before `end` (s: its own
    stated end, `_own_end`; None when unknown, then only a break-off is noted)."""
    if broke is not None:
        of = f" of {end:.2f}s" if end is not None and math.isfinite(end) else ""
        at = f" after {last:.2f}s" if last is not None else " at its start"
        notes.append(f"truncated {kind}: decoding broke off{at}{of} ({broke})")
    elif (
        end is not None and not reached and last is not None and math.isfinite(end) and last < end - max(0.25, 3 * step)
    ):
        notes.append(f"truncated {kind}: ends at {last:.2f}s, its header promises {end:.2f}s")
