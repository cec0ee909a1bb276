"""Encode sampled frames back into a small mp4 (for HTTP backends that take a video, not frames)."""

from __future__ import annotations

import io
from fractions import Fraction

import numpy as np

from ..core.errors import require


def encode_mp4(frames: np.ndarray, fps: float) -> bytes:
    """H.264 mp4 bytes of `frames` (T,H,W,3 uint8; even H and W) played at `fps`."""
    av = require("av", "media", "video encoding")
    buf = io.BytesIO()
    rate = Fraction(fps).limit_denominator(1000) if fps > 0 else Fraction(1)
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.height, stream.width = frames.shape[1] - frames.shape[1] % 2, frames.shape[2] - frames.shape[2] % 2
        stream.pix_fmt = "yuv420p"
        for img in frames:
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(img[: stream.height, : stream.width]), format="rgb24"
            )
            for pkt in stream.encode(frame):
                out.mux(pkt)
        for pkt in stream.encode():
            out.mux(pkt)
    return buf.getvalue()


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit mono PCM WAV bytes of float audio in [-1, 1]."""
    import wave

    buf = io.BytesIO()
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()
