"""`media.preset: qwen-omni-utils`: Qwen's own preprocessing (PyPI `qwen-omni-utils` 0.0.9,
`process_mm_info`), reproduced on PyAV so that a run feeds Qwen2.5-Omni what its reference pipeline
would, and tested against that package on real mp4s (tests/media/test_reference.py).

What the reference does, and so this preset (constants from `qwen_omni_utils.v2_5.vision_process`):
- frames: `nframes = total_frames / video_fps * 2`, clamped to [4, min(768, total_frames)] and
  floored to a multiple of 2 (FRAME_FACTOR); indices `linspace(first, last, nframes).round()` over
  the clip's (or span's) frames — the first and the last frame are always used; no 32-frame cap.
- time axis: the sampling rate sent with each video is `nframes / total_frames * video_fps`.
- size: each frame is resized (torchvision bicubic, antialiased) to multiples of 28 (patch 14 x
  merge 2) by `smart_resize` within [128, 768] tokens per frame and a total budget of
  `MODEL_SEQ_LEN (128000) * 28 * 28 * 0.9` pixels over all frames (`max_pixels = max(min(768 * 784,
  total / nframes * 2), 128 * 784 * 1.05)`). `cap_pixels_per_frame` is therefore 768 * 28 * 28 =
  602,112 px: the reference's per-frame cap, applied here before the processor (whose own Qwen2-VL
  video processing has no such cap, transformers warns); recorded in `PRESET_SETTINGS`.
- audio: 16 kHz mono, the whole track (no `max_seconds` cut); with a video, its audio track is the
  audio part, interleaved with the video frames by time (`hf` sends it via the processor's
  `load_audio_from_video` with the audio decoded here, and `use_audio_in_video` to the model).

Differences that remain: frames are decoded by PyAV's swscale (the reference by torchcodec/decord),
the audio is resampled by libswresample (the reference: ffmpeg to s16 at the source rate, then
soxr via librosa), and the container's rotation is applied (the reference readers may not).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..core.errors import EmptyMedia, MediaError, require
from ..core.specs import MediaSpec
from .decode import DecodedClip, frame_rotation

PRESETS = ("qwen-omni-utils",)

FPS = 2.0
FRAME_FACTOR = 2
FPS_MIN_FRAMES = 4
FPS_MAX_FRAMES = 768
PATCH_FACTOR = 28  # patch 14 x spatial merge 2
VIDEO_MIN_PIXELS = 128 * PATCH_FACTOR * PATCH_FACTOR  # 100,352
VIDEO_MAX_PIXELS = 768 * PATCH_FACTOR * PATCH_FACTOR  # 602,112: cap_pixels_per_frame
MODEL_SEQ_LEN = 128000
VIDEO_TOTAL_PIXELS = MODEL_SEQ_LEN * PATCH_FACTOR * PATCH_FACTOR * 0.9
MAX_RATIO = 200
SAMPLE_RATE = 16000

PRESET_SETTINGS = {
    "qwen-omni-utils": {
        "source": "qwen-omni-utils 0.0.9 process_mm_info (v2_5)",
        "fps": FPS,
        "min_frames": FPS_MIN_FRAMES,
        "max_frames": FPS_MAX_FRAMES,
        "frame_factor": FRAME_FACTOR,
        "patch_factor": PATCH_FACTOR,
        "min_pixels_per_frame": VIDEO_MIN_PIXELS,
        "cap_pixels_per_frame": VIDEO_MAX_PIXELS,
        "total_pixels": VIDEO_TOTAL_PIXELS,
        "sample_rate": SAMPLE_RATE,
        "audio_in_video": "interleaved by time",
    }
}


def _round_by(x: float, f: int) -> int:
    return round(x / f) * f


def _ceil_by(x: float, f: int) -> int:
    return math.ceil(x / f) * f


def _floor_by(x: float, f: int) -> int:
    return math.floor(x / f) * f


def smart_nframes(total_frames: int, video_fps: float, fps: float = FPS) -> int:
    """Frames the reference samples from `total_frames` frames at `video_fps` (see the module rules).

    Raises MediaError when the clip has fewer than 2 frames (the reference raises ValueError).
    """
    min_frames = _ceil_by(FPS_MIN_FRAMES, FRAME_FACTOR)
    max_frames = _floor_by(min(FPS_MAX_FRAMES, total_frames), FRAME_FACTOR)
    n = total_frames / video_fps * fps
    n = min(min(max(n, min_frames), max_frames), total_frames)
    n = _floor_by(n, FRAME_FACTOR)
    if not (FRAME_FACTOR <= n <= total_frames):
        raise MediaError(f"qwen-omni-utils preset: {total_frames} frames give {n} frames; need at least {FRAME_FACTOR}")
    return int(n)


def smart_resize(height: int, width: int, factor: int, min_pixels: float, max_pixels: float) -> tuple[int, int]:
    """(height, width) in multiples of `factor` with the area in [min_pixels, max_pixels], aspect kept.

    Raises MediaError for an aspect ratio above 200 (the reference raises ValueError).
    """
    if max(height, width) / min(height, width) > MAX_RATIO:
        raise MediaError(
            f"absolute aspect ratio must be smaller than {MAX_RATIO}, got {max(height, width) / min(height, width)}"
        )
    h_bar = max(factor, _round_by(height, factor))
    w_bar = max(factor, _round_by(width, factor))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = _floor_by(height / beta, factor)
        w_bar = _floor_by(width / beta, factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = _ceil_by(height * beta, factor)
        w_bar = _ceil_by(width * beta, factor)
    return h_bar, w_bar


def frame_budget(nframes: int) -> tuple[int, float]:
    """The reference's (min_pixels, max_pixels) per frame for a video of `nframes` frames."""
    max_pixels = max(min(VIDEO_MAX_PIXELS, VIDEO_TOTAL_PIXELS / nframes * FRAME_FACTOR), int(VIDEO_MIN_PIXELS * 1.05))
    return VIDEO_MIN_PIXELS, max_pixels


def frame_range(span: tuple[float, float] | None, total_frames: int, video_fps: float) -> tuple[int, int]:
    """First and last frame index of `span` (s), as the reference's `calculate_video_frame_range`."""
    if span is None:
        return 0, total_frames - 1
    max_duration = total_frames / video_fps
    start = math.ceil(max(0.0, min(span[0], max_duration)) * video_fps)
    end = min(math.floor(max(0.0, min(span[1], max_duration)) * video_fps), total_frames - 1)
    if start >= end:
        raise MediaError(f"span {span} holds no frames (frames {start}..{end} of {total_frames})")
    return start, end


def frame_indices(first: int, last: int, nframes: int) -> list[int]:
    """`torch.linspace(first, last, nframes).round()` as the reference computes it (float32, half to even)."""
    torch = require("torch", "hf", "the qwen-omni-utils media preset")
    return torch.linspace(first, last, nframes).round().long().tolist()


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(T,H,W,3) uint8 -> (T,height,width,3) uint8 with torchvision's antialiased bicubic, as the reference."""
    torch = require("torch", "hf", "the qwen-omni-utils media preset")
    tv = require("torchvision", "hf", "the qwen-omni-utils media preset")
    video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    out = tv.transforms.functional.resize(
        video, [height, width], interpolation=tv.transforms.InterpolationMode.BICUBIC, antialias=True
    )
    return out.permute(0, 2, 3, 1).contiguous().numpy()


def decode_reference(
    path: str | Path,
    media: MediaSpec,
    span: tuple[float, float] | None = None,
    *,
    video: bool = True,
    audio: bool = True,
) -> DecodedClip:
    """Decode `path` as qwen-omni-utils would (module rules); `frame_times` are the sampled frames' times.

    `sample_fps` of the result is the reference's per-video rate. Raises MediaError as `decode` does.
    """
    av = require("av", "media", "media decoding")
    path = Path(path)
    # audio: 16 kHz mono, the whole track or span, no max_seconds cut (the feature extractor's window
    # cuts what is too long; the hf backend records that)
    aclip = reference_audio(path, span) if audio else None
    if not video:
        if aclip is None or aclip.audio is None:
            broke = [n for n in (aclip.notes if aclip else []) if n.startswith("truncated")]
            raise (MediaError if broke else EmptyMedia)(f"no decodable audio in {path} ({'; '.join(aclip.notes)})")
        return aclip
    try:
        container = av.open(str(path))
    except Exception as e:
        raise MediaError(f"cannot open media file {path}: {e}") from e
    notes: list[str] = []
    try:
        if not container.streams.video:
            notes.append("no video stream")
            frames = None
            times = np.zeros(0, np.float32)
            sample_fps = None
            rotation = 0
        else:
            frames, times, sample_fps, rotation = _reference_frames(container, path, span, notes)
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"cannot decode media file {path}: {type(e).__name__}: {e}") from e
    finally:
        container.close()
    if aclip is not None:
        notes += aclip.notes
    wav = aclip.audio if aclip is not None else None
    if frames is None and wav is None:
        raise EmptyMedia(f"no video or audio samples in {path} ({'; '.join(notes) or 'header only'})")
    duration = float(len(times) / sample_fps) if sample_fps else (aclip.duration if aclip else 0.0)
    clip = DecodedClip(
        frames=frames,
        frame_times=times,
        audio=wav,
        sample_rate=SAMPLE_RATE,
        duration=duration,
        has_video=frames is not None,
        has_audio=wav is not None,
        notes=notes,
        rotation=rotation,
        fps=sample_fps,
    )
    return clip


def reference_audio(path: str | Path, span: tuple[float, float] | None = None) -> DecodedClip:
    """The reference's audio: every decoded sample as 16-bit PCM at the source rate (ffmpeg via
    audioread), averaged to mono, cut to `span` by whole source samples, resampled to 16 kHz with
    soxr's HQ filter (librosa.load). Returns a clip without frames; `has_audio` False without a track."""
    av = require("av", "media", "media decoding")
    soxr = require("soxr", "hf", "the qwen-omni-utils media preset")
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"media file not found: {path}")
    if path.stat().st_size == 0:
        raise EmptyMedia(f"media file is empty (zero bytes): {path}")
    notes: list[str] = []
    chunks: list[np.ndarray] = []
    rate = None
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                notes.append("no audio stream")
            else:
                aus = container.streams.audio[0]
                rate = aus.codec_context.sample_rate or aus.rate
                resampler = av.AudioResampler(format="s16", layout=aus.layout.name, rate=rate)
                try:
                    for fr in container.decode(aus):
                        for rf in resampler.resample(fr):
                            chunks.append(rf.to_ndarray().reshape(-1, len(rf.layout.channels)))
                except Exception as e:  # a cut file: keep what decoded
                    notes.append(f"truncated audio: decoding broke off ({type(e).__name__})")
                for rf in resampler.resample(None):
                    chunks.append(rf.to_ndarray().reshape(-1, len(rf.layout.channels)))
    except MediaError:
        raise
    except Exception as e:
        raise MediaError(f"cannot decode audio of {path}: {type(e).__name__}: {e}") from e
    wav = None
    if chunks:
        pcm = np.concatenate(chunks).astype(np.float32) / 32768.0
        y = pcm.mean(axis=1) if pcm.shape[1] > 1 else pcm[:, 0]
        if span is not None:
            a = int(round(rate * span[0]))
            y = y[a : a + int(round(rate * (span[1] - span[0])))]
        if rate != SAMPLE_RATE and len(y):
            y = soxr.resample(y, rate, SAMPLE_RATE, quality="soxr_hq")
        wav = np.ascontiguousarray(y, dtype=np.float32) if len(y) else None
    if wav is None and "no audio stream" not in notes:
        notes.append("no audio in the segment")
    seconds = len(wav) / SAMPLE_RATE if wav is not None else 0.0
    return DecodedClip(None, np.zeros(0, np.float32), wav, SAMPLE_RATE, seconds, False, wav is not None, notes)


def _reference_frames(container, path: Path, span, notes: list[str]):
    vs = container.streams.video[0]
    video_fps = float(vs.average_rate or vs.guessed_rate or 0)
    if video_fps <= 0:
        raise MediaError(f"{path}: the video stream has no frame rate")
    # the readers index frames by the container's packets: count them without decoding
    total = sum(1 for pkt in container.demux(vs) if pkt.size)
    if total == 0:
        raise MediaError(f"{path}: no video frame in the file")
    first, last = frame_range(span, total, video_fps)
    n_in = last - first + 1
    nframes = smart_nframes(n_in, video_fps)
    idx = frame_indices(first, last, nframes)
    wanted = set(idx)
    arrays: dict[int, np.ndarray] = {}
    times_of: dict[int, float] = {}
    rotation = 0
    t0 = None
    av = require("av", "media", "media decoding")
    with av.open(str(path)) as again:  # a fresh pass from the first frame
        try:
            for i, fr in enumerate(again.decode(again.streams.video[0])):
                if t0 is None:
                    t0, rotation = float(fr.time or 0.0), frame_rotation(fr)
                if i in wanted:
                    arr = fr.to_ndarray(format="rgb24")
                    arrays[i] = np.rot90(arr, rotation // 90) if rotation else arr
                    times_of[i] = float(fr.time or 0.0) - t0
                if i >= idx[-1]:
                    break
        except Exception:  # av's InvalidDataError and kin: a cut file; keep what decoded (noted below)
            pass
    if not arrays:
        raise MediaError(f"{path}: no video frame decodes")
    got = sorted(arrays)
    if len(got) < len(wanted):  # a cut file: frames past the cut repeat the last one that decoded
        notes.append(f"truncated video: {len(got)} of the {len(wanted)} sampled frames decode")
    pick = [i if i in arrays else got[-1] for i in idx]
    frames = np.stack([arrays[i] for i in pick])
    h, w = frames.shape[1:3]
    min_px, max_px = frame_budget(nframes)
    rh, rw = smart_resize(h, w, PATCH_FACTOR, min_px, max_px)
    if (rh, rw) != (h, w):
        frames = resize_frames(frames, rh, rw)
    if rotation:
        notes.append(f"rotated {rotation} degrees (container display matrix)")
    times = np.asarray([times_of[i] for i in pick], np.float32)
    sample_fps = nframes / max(n_in, 1e-6) * video_fps
    return frames, times, sample_fps, rotation
