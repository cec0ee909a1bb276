"""Word polarity from lexicons: VADER (vaderSentiment) and, when installed, NRC emotion words (nrclex's JSON)."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

NAME = "lexicon"
SETTINGS = {"lexicons": "vader+nrc", "v": 1}
PACKAGES = ("vaderSentiment",)
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}


def _nrc() -> dict[str, list[str]] | None:
    """nrclex's word -> emotions table, read from its JSON directly (no TextBlob needed); None if absent."""
    if "nrc" not in _STATE:
        table = None
        try:
            import importlib.util
            from pathlib import Path

            spec = importlib.util.find_spec("nrclex")
            if spec and spec.origin:
                base = Path(spec.origin).parent
                for f in [base / "nrc_en.json", *base.glob("*.json")]:
                    if f.is_file():
                        table = json.loads(f.read_text())
                        break
        except (OSError, ValueError, ImportError):
            table = None
        _STATE["nrc"] = table
    return _STATE["nrc"]


def run(text: str) -> dict[str, Any]:
    with _LOCK:
        if "vader" not in _STATE:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

            _STATE["vader"] = SentimentIntensityAnalyzer()
        scores = _STATE["vader"].polarity_scores(text)
    out: dict[str, Any] = {"vader": round(float(scores["compound"]), 4)}
    nrc = _nrc()
    if nrc:
        counts: dict[str, int] = {}
        for w in re.findall(r"[a-z']+", text.lower()):
            for emo in nrc.get(w, []):
                if emo not in ("positive", "negative"):
                    counts[emo] = counts.get(emo, 0) + 1
        out["nrc"] = dict(sorted(counts.items()))
    return out


def describe(r: dict[str, Any]) -> str:
    v = r.get("vader", 0.0)
    polarity = "positive" if v >= 0.05 else "negative" if v <= -0.05 else "neutral"
    extra = ""
    if r.get("nrc"):
        top = sorted(r["nrc"].items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        extra = ", emotion words: " + ", ".join(k for k, _ in top)
    return f"words: {polarity} (vader {v:+.2f}){extra}"
