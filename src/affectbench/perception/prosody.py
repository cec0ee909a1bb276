"""Prosody: pitch, loudness, speech rate (openSMILE eGeMAPS functionals) and an energy voice-activity detector."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

NAME = "prosody"
LANGUAGES = None  # reads no words: any language
SETTINGS = {"features": "eGeMAPSv02-functionals", "vad": "energy-30ms", "v": 1}
PACKAGES = ("opensmile",)
_LOCK = threading.Lock()
_SMILE: Any = None

KEYS = {
    "F0semitoneFrom27.5Hz_sma3nz_amean": "pitch_st",
    "F0semitoneFrom27.5Hz_sma3nz_stddevNorm": "pitch_var",
    "loudness_sma3_amean": "loudness",
    "loudnessPeaksPerSec": "syll_per_sec",
    "VoicedSegmentsPerSec": "voiced_segments_per_sec",
}


def vad(audio: np.ndarray, sample_rate: int, frame_s: float = 0.03) -> dict[str, float]:
    """Energy VAD: the share of 30 ms frames louder than a floor set from the clip's own level."""
    n = max(1, int(frame_s * sample_rate))
    frames = audio[: len(audio) // n * n].reshape(-1, n) if len(audio) >= n else audio.reshape(1, -1)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    floor = max(0.005, 0.1 * float(np.percentile(rms, 95)))
    active = rms > floor
    return {"voiced_frac": round(float(active.mean()), 3), "rms": round(float(rms.mean()), 4)}


def run(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    global _SMILE
    out: dict[str, Any] = vad(audio, sample_rate)
    with _LOCK:
        if _SMILE is None:
            import opensmile

            _SMILE = opensmile.Smile(
                feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.Functionals
            )
        df = _SMILE.process_signal(audio.astype(np.float32), sample_rate)
    row = df.iloc[0]
    for src, dst in KEYS.items():
        out[dst] = round(float(row[src]), 4)
    out["pitch_hz"] = round(27.5 * 2 ** (out["pitch_st"] / 12), 1) if out["pitch_st"] > 0 else 0.0
    return out


def describe(r: dict[str, Any]) -> str:
    if r.get("voiced_frac", 0) < 0.05:
        return "voice: silent"
    hz = r.get("pitch_hz", 0.0)
    if not hz:
        pitch = "pitch unclear"
    else:
        level = "high" if hz >= 130 else "low" if hz < 90 else "medium"
        var = r.get("pitch_var", 0.0)
        spread = "variable" if var >= 0.15 else "flat" if var < 0.07 else "moderately varied"
        pitch = f"pitch {level} ({hz:.0f} Hz) and {spread}"
    loud = r.get("loudness", 0.0)
    level = "loud" if loud >= 0.95 else "soft" if loud < 0.55 else "moderate loudness"
    return f"voice: {pitch}, {level}, {r.get('syll_per_sec', 0.0):.1f} syll/s, voiced {r['voiced_frac']:.0%}"
