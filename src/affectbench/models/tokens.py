"""Prompt tokens per modality that a family's processor makes of media of a given shape, without
weights and without running the processor on pixels.

`Counter` holds the numbers the counts depend on, read from a processor (`counter_of(proc, family)`,
a processor loaded from its config files only) or, for a released checkpoint whose files are not at
hand, the processor classes' own defaults (`released_counter(family)`, as bench/_zoo.py builds them).

Counts follow the processors' code (transformers 5.24), and tests/models/test_tokens.py checks them
against the placeholder tokens the real processor writes:
- Qwen2-VL / Qwen2.5-VL / Qwen2.5-Omni / Qwen3-Omni video: frames padded to a multiple of
  `temporal_patch_size`; each frame resized by `smart_resize` to multiples of patch x merge within
  [min_pixels, max_pixels], where with `cap_pixels_per_frame` max_pixels is also bounded by an even
  share of `max_video_tokens` x factor² x 0.9 (floored at 1.05 x min_pixels)
  (`Qwen2VLVideoProcessor.resize`); tokens = t x (h/patch) x (w/patch) / merge².
- images of those families: the same grid with t = 1 (`Qwen2VLImageProcessor`).
- Whisper-based audio (Qwen2-Audio, Qwen2.5-Omni): L = min(ceil(samples / hop), nb_max_frames) mel
  frames, tokens = ((L - 1) // 2 + 1 - 2) // 2 + 1 (`processing_qwen2_audio`, `processing_qwen2_5_omni`);
  Qwen3-Omni: chunks of 100 frames give 13 tokens each, the rest ((r-1)//2+1 -1)//2+1 -1)//2+1.
- Gemma 3n: a fixed `image_seq_length` (256) per image and `audio_seq_length` (188) per clip of at most
  30 s (`Gemma3nProcessor`).
- Phi-4-multimodal: the image processor's `num_img_tokens` and the audio extractor's
  `audio_embed_sizes` for a blank input of that shape (computed once per shape).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from ..core.errors import ModelError


@dataclass(frozen=True)
class Counter:
    """The settings a family's media token counts depend on. `vision`: "grid" (Qwen patch grid), "fixed"
    (image_tokens per image), "phi4" (ask the image processor), "none"; `audio`: "whisper",
    "qwen3_omni", "fixed", "phi4", "none". Pixel bounds are per frame (px); hop in samples."""

    family: str
    vision: str = "none"
    audio: str = "none"
    patch: int = 14
    merge: int = 2
    temporal: int = 2
    video_min_pixels: int = 128 * 28 * 28
    video_max_pixels: int = 768 * 28 * 28
    image_min_pixels: int = 56 * 56
    image_max_pixels: int = 28 * 28 * 1280
    cap_pixels_per_frame: bool = False
    max_video_tokens: int = 128000
    image_tokens: int | None = None
    audio_tokens: int | None = None
    hop: int = 160
    max_mel_frames: int | None = 3000
    max_audio_seconds: float | None = None  # audio beyond this is cut by the processor (fixed-slot families)
    sample_rate: int = 16000
    source: str = ""
    processors: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    # ---- counts ------------------------------------------------------------------------------
    def video(self, frames: int, height: int, width: int) -> int:
        """Tokens of one video of `frames` frames of height x width px as the processor takes it."""
        if frames <= 0:
            return 0
        if self.vision == "grid":
            factor = self.patch * self.merge
            max_px = self.video_max_pixels
            if self.cap_pixels_per_frame:
                total = int(self.max_video_tokens * factor * factor * 0.9)
                max_px = max(min(max_px, total * self.temporal // frames), int(self.video_min_pixels * 1.05))
            h, w = smart_resize(height, width, factor, self.video_min_pixels, max_px)
            t = (frames + -frames % self.temporal) // self.temporal
            return t * (h // self.patch) * (w // self.patch) // self.merge**2
        if self.vision in ("fixed", "phi4"):  # frames go as images
            return frames * self.image(height, width)
        return 0

    def image(self, height: int, width: int) -> int:
        """Tokens of one image (or one frame sent as an image)."""
        if self.vision == "grid":
            factor = self.patch * self.merge
            h, w = smart_resize(height, width, factor, self.image_min_pixels, self.image_max_pixels)
            return (h // self.patch) * (w // self.patch) // self.merge**2
        if self.vision == "fixed":
            return int(self.image_tokens or 0)
        if self.vision == "phi4":
            return _phi4_image_tokens(self.processors["image"], height, width)
        return 0

    def audio_seconds_kept(self, seconds: float) -> float:
        """Seconds of an audio clip the processor keeps (the rest is cut, without a trace, by it)."""
        cap = []
        if self.max_audio_seconds is not None:
            cap.append(self.max_audio_seconds)
        if self.audio in ("whisper",) and self.max_mel_frames:
            cap.append(self.max_mel_frames * self.hop / self.sample_rate)
        return min([seconds, *cap])

    def audio_clip(self, samples: int) -> int:
        """Tokens of one audio clip of `samples` samples at `sample_rate`."""
        if samples <= 0:
            return 0
        if self.audio == "whisper":
            n = math.ceil(samples / self.hop)
            if self.max_mel_frames:
                n = min(n, self.max_mel_frames)
            return ((n - 1) // 2 + 1 - 2) // 2 + 1
        if self.audio == "qwen3_omni":
            n = math.ceil(samples / self.hop)
            rest = n % 100
            feat = (rest - 1) // 2 + 1
            return ((feat - 1) // 2 + 1 - 1) // 2 + 1 + (n // 100) * 13
        if self.audio == "fixed":
            return int(self.audio_tokens or 0)
        if self.audio == "phi4":
            return _phi4_audio_tokens(self.processors["audio"], samples, self.sample_rate)
        return 0

    def describe(self) -> dict[str, Any]:
        return {"family": self.family, "vision": self.vision, "audio": self.audio, "source": self.source}


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """Qwen2-VL's `smart_resize` (transformers `image_processing_qwen2_vl`): (h, w) in multiples of
    `factor`, area within [min_pixels, max_pixels], aspect kept. Raises ModelError on an aspect > 200."""
    if max(height, width) / max(1, min(height, width)) > 200:
        raise ModelError(f"an aspect ratio above 200 cannot be processed ({height}x{width})")
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


_PHI4: dict[tuple, int] = {}  # (kind, processor id, shape) -> tokens: one blank input per shape


def _phi4_image_tokens(ip, height: int, width: int) -> int:
    key = ("image", id(ip), height, width)
    if key not in _PHI4:
        import numpy as np
        from PIL import Image

        out = ip(images=[Image.fromarray(np.zeros((height, width, 3), np.uint8))], return_tensors="np")
        _PHI4[key] = int(np.asarray(out["num_img_tokens"]).reshape(-1)[0])
    return _PHI4[key]


def _phi4_audio_tokens(fe, samples: int, rate: int) -> int:
    key = ("audio", id(fe), samples, rate)
    if key not in _PHI4:
        import numpy as np

        out = fe([np.zeros(samples, np.float32)], sampling_rate=rate, return_tensors="np")
        _PHI4[key] = int(np.asarray(out["audio_embed_sizes"]).reshape(-1)[0])
    return _PHI4[key]


# ---- where the settings come from -----------------------------------------------------------------
GRID_FAMILIES = {"qwen2_5_omni": "whisper", "qwen3_omni_moe": "qwen3_omni", "qwen2_5_vl": "none", "qwen2_vl": "none"}


def _size(sub, lo: str, hi: str, override: dict | None = None) -> tuple[int | None, int | None]:
    """(min_pixels, max_pixels) of a Qwen2-VL image/video processor; `override` is the processor class's
    own `videos_kwargs`/`images_kwargs` default `size`, which wins over the sub-processor's saved size
    when the processor merges its kwargs (Qwen2.5-Omni: 128..768 tokens per video frame)."""
    size = override or getattr(sub, "size", None) or {}
    get = size.get if isinstance(size, dict) else (lambda k, d=None: getattr(size, k, d))
    return (get("shortest_edge") or getattr(sub, lo, None), get("longest_edge") or getattr(sub, hi, None))


def counter_of(proc, family: str, cap_pixels_per_frame: bool = False, source: str = "processor") -> Counter:
    """The Counter of a loaded processor (`AutoProcessor.from_pretrained(folder)`: config files only).

    `family` is the key of `models.families` (model_type based). Raises ModelError for a family whose
    processor this module cannot count."""
    vp = getattr(proc, "video_processor", None)
    ip = getattr(proc, "image_processor", None)
    fe = getattr(proc, "feature_extractor", None) or getattr(proc, "audio_processor", None)
    kw: dict[str, Any] = {"family": family, "source": source}
    if family in GRID_FAMILIES or family == "qwen2_audio":
        if family in GRID_FAMILIES:
            sub = vp or ip
            vkw = (getattr(proc, "videos_kwargs", None) or {}).get("size") if vp is not None else None
            ikw = (getattr(proc, "images_kwargs", None) or {}).get("size")
            vmin, vmax = _size(sub, "min_pixels", "max_pixels", vkw)
            imin, imax = _size(ip or sub, "min_pixels", "max_pixels", ikw)
            kw.update(
                vision="grid",
                patch=int(sub.patch_size),
                merge=int(sub.merge_size),
                temporal=int(getattr(sub, "temporal_patch_size", 2) or 1),
                video_min_pixels=int(vmin),
                video_max_pixels=int(vmax),
                image_min_pixels=int(imin),
                image_max_pixels=int(imax),
                cap_pixels_per_frame=bool(cap_pixels_per_frame and vp is not None),
                max_video_tokens=int(getattr(vp, "max_video_tokens", 128000) or 128000),
            )
        audio = "whisper" if family == "qwen2_audio" else GRID_FAMILIES[family]
        if audio != "none" and fe is not None:
            kw.update(
                audio=audio,
                hop=int(fe.hop_length),
                max_mel_frames=int(getattr(fe, "nb_max_frames", 0) or 0) or None,
                sample_rate=int(fe.sampling_rate),
            )
        return Counter(**kw)
    if family == "gemma3n":
        fe_rate = int(getattr(fe, "sampling_rate", 16000) or 16000)
        return Counter(
            **kw,
            vision="fixed",
            audio="fixed",
            image_tokens=int(getattr(proc, "image_seq_length", 256)),
            audio_tokens=int(getattr(proc, "audio_seq_length", 188)),
            max_audio_seconds=30.0,
            sample_rate=fe_rate,
        )
    if family == "phi4_multimodal":
        return Counter(
            **kw,
            vision="phi4",
            audio="phi4",
            sample_rate=int(getattr(fe, "sampling_rate", 16000) or 16000),
            processors={"image": ip, "audio": fe},
        )
    raise ModelError(f"no media token count for family {family!r} (counted: {sorted(COUNTED)})")


COUNTED = (*GRID_FAMILIES, "qwen2_audio", "gemma3n", "phi4_multimodal")


@cache
def counter_or_none(proc, family: str, cap_pixels_per_frame: bool = False) -> Counter | None:
    """`counter_of`, or None for a family this module cannot count (its prompts then go unbudgeted)."""
    try:
        return counter_of(proc, family, cap_pixels_per_frame)
    except ModelError:
        return None


def released_counter(family: str) -> Counter:
    """The Counter of a family's released processor when its files are not at hand: the processor
    classes' defaults, which are the released settings (Qwen2-VL image/video processors; Whisper
    features at 128 mel bins with a 300 s window for Qwen2.5-Omni and 30 s for Qwen2-Audio; Gemma 3n
    256 tokens per image and 188 per clip; Phi-4's image and audio processors), with the per-frame cap
    the hf backend asks for. Qwen3-Omni is not counted here (its released processor files are needed)."""
    from types import SimpleNamespace

    if family in ("qwen2_5_omni", "qwen2_5_vl", "qwen2_vl", "qwen2_audio"):
        from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor, WhisperFeatureExtractor

        parts: dict[str, Any] = {}
        if family != "qwen2_audio":
            parts.update(image_processor=Qwen2VLImageProcessor(), video_processor=Qwen2VLVideoProcessor())
        if family in ("qwen2_5_omni", "qwen2_audio"):
            chunk = 300 if family == "qwen2_5_omni" else 30
            parts["feature_extractor"] = WhisperFeatureExtractor(feature_size=128, chunk_length=chunk)
        src = "released processor settings (transformers class defaults)"
        return counter_of(SimpleNamespace(**parts), family, cap_pixels_per_frame=True, source=src)
    if family == "gemma3n":
        return counter_of(
            SimpleNamespace(image_seq_length=256, audio_seq_length=188), family, source="Gemma3nProcessor"
        )
    if family == "phi4_multimodal":
        from transformers import Phi4MultimodalFeatureExtractor, Phi4MultimodalImageProcessor

        proc = SimpleNamespace(
            image_processor=Phi4MultimodalImageProcessor(), audio_processor=Phi4MultimodalFeatureExtractor()
        )
        return counter_of(proc, family, source="Phi-4-multimodal processor class defaults")
    raise ModelError(f"no released processor settings for family {family!r} here; point the model at its folder")
