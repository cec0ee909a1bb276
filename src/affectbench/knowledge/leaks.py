"""Label leakage in knowledge texts: does a text state the gold answer, or only name an evidence cue?

A knowledge text *states the answer* when it names the gold answer — the label, one of its synonyms
declared by the dataset's answer template (`prompts.parsing.LabelMatcher`), or for sentiment the gold
polarity word — outside a clause that names an evidence cue; it *names an evidence cue* when the
mention sits in a clause about the face, voice, words or a lexicon ("face: happy 0.71", "words:
positive (vader +0.62)"), or when a lexicon polarity score has the gold sign. `leak_kind` tells the
two apart; only answer-stating counts as a leak (`leaks`), cue-naming is reported as `cue_rate`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from ..core.types import DatasetInfo, TaskType

POLARITY_WORDS = ("positive", "negative", "neutral")


_REFUSAL = re.compile(
    r"^\s*(?:i\s*(?:'m| am)\s*(?:sorry|unable|not able)|i\s*(?:cannot|can't|can not|won't)|"
    r"sorry\b|as an ai\b|i do not have|i don't have|抱歉|对不起|我无法|我不能)",
    re.I,
)


# Words that make a clause about an evidence cue rather than a verdict.
_CUE_WORDS = re.compile(
    r"(?<![a-z])(?:face|facial|expression|smil\w*|frown\w*|brows?|eyes?|mouth|gaze|lips?|voice|vocal|tone|"
    r"pitch|prosody|loud\w*|speech|speaking|syll|words?|wording|phrasing|lexicon|vader|hownet|nrc|transcript|"
    r"laugh\w*|sigh\w*|posture|gesture\w*|heard)(?![a-z])|面部|表情|脸|眼|嘴|眉|声音|语气|语调|音高|措辞|用词|词语",
    re.I,
)


_CLAUSE_END = re.compile(r"[.!?](?!\S)|[;\n。；！？]")  # a full stop ends a clause, a decimal point does not


# A lexicon polarity score: "vader +0.62", "polarity: -0.4", "HowNet pos 3, neg 0".
LEXICON_SCORE = re.compile(
    r"(?P<name>vader|compound|polarity|valence|sentiment\s+score)\s*[:=]?\s*(?P<x>[+-]?\d+(?:\.\d+)?)", re.I
)


HOWNET_SCORE = re.compile(r"hownet\s+pos\s*(?P<pos>\d+(?:\.\d+)?)\s*,?\s*neg\s*(?P<neg>\d+(?:\.\d+)?)", re.I)


def polarity_word(x: float, neutral_band: float = 0.0) -> str:
    return "positive" if x > neutral_band else "negative" if x < -neutral_band else "neutral"


def _answer_space(info: DatasetInfo) -> tuple[tuple[str, ...], bool]:
    """(labels whose words name an answer, whether they are polarities of a score)."""
    if info.task is TaskType.REGRESSION:
        return POLARITY_WORDS, True
    return tuple(info.labels), False


@functools.lru_cache(maxsize=64)
def answer_matcher(info: DatasetInfo):
    """The parser's `LabelMatcher` over the dataset's answer words, with the synonyms (and negations)
    that the dataset's answer template declares; for a sentiment score, over the polarity words with
    the `sentiment_polarity` template's synonyms (English and Chinese)."""
    from ..prompts import default_prompt_name, load_template
    from ..prompts.parsing import LabelMatcher
    from ..prompts.template import TEMPLATES_DIR

    labels, polar = _answer_space(info)
    name = "sentiment_polarity" if polar else default_prompt_name(info)
    spec = load_template(TEMPLATES_DIR / f"{name}.yaml", name).spec.parse
    return LabelMatcher.build(labels, spec.synonyms, spec.negations)


def gold_words(target: Any, info: DatasetInfo) -> tuple[str, ...]:
    """The folded forms that name the gold answer: its label (or polarity) and that label's synonyms."""
    gold = _gold_label(target, info)
    if gold is None:
        return ()
    m = answer_matcher(info)
    return tuple(sorted(f for f, lab in m.forms.items() if lab == gold))


def _gold_label(target: Any, info: DatasetInfo) -> str | None:
    if target is None:
        return None
    if info.task is TaskType.REGRESSION:
        try:
            return polarity_word(float(target))
        except (TypeError, ValueError):
            return None
    from ..prompts.parsing import fold

    t = fold(str(target))
    return next((lab for lab in info.labels if fold(lab) == t), None)


def _score_polarities(text: str) -> list[str]:
    """The polarity of every lexicon score in `text` (VADER's ±0.05 neutral band; HowNet pos − neg)."""
    out = []
    for m in LEXICON_SCORE.finditer(text):
        x = float(m.group("x"))
        out.append(polarity_word(x, 0.05 if m.group("name").lower() in ("vader", "compound") else 0.0))
    for m in HOWNET_SCORE.finditer(text):
        out.append(polarity_word(float(m.group("pos")) - float(m.group("neg"))))
    return out


def leak_kind(text: str | None, target: Any, info: DatasetInfo) -> str | None:
    """How `text` gives the gold answer away: "answer" (states it), "cue" (names it as evidence), or None.

    A mention of the gold label, one of its declared synonyms, or (sentiment) the gold polarity is
    "cue" when its clause (between . ; ! ? or line ends, CJK stops too) names a face, voice, words or
    lexicon cue, else "answer"; negated mentions do not count ("not happy"). On sentiment
    tasks a lexicon score of the gold sign ("vader +0.62" for a positive target) is a "cue".
    "answer" wins over "cue" when both occur.
    """
    if not text:
        return None
    gold = _gold_label(target, info)
    if gold is None:
        return None
    from ..prompts.parsing import fold

    folded = fold(text)
    kind = None
    for pos, label, _how in answer_matcher(info).mentions(folded):
        if label != gold:
            continue
        clause_start = max((m.end() for m in _CLAUSE_END.finditer(folded, 0, pos)), default=0)
        end = _CLAUSE_END.search(folded, pos)
        if _CUE_WORDS.search(folded[clause_start : end.start() if end else len(folded)]):
            kind = kind or "cue"
        else:
            return "answer"
    if kind is None and is_sentiment(info) and gold in _score_polarities(text):
        kind = "cue"
    return kind


def is_sentiment(info: DatasetInfo) -> bool:
    return info.task is TaskType.REGRESSION or info.task_name.lower() == "sentiment"


def leaks(text: str | None, target: Any, info: DatasetInfo) -> bool:
    """True when `text` states the gold answer (see `leak_kind`); naming it as an evidence cue is not a leak."""
    return leak_kind(text, target, info) == "answer"


def label_vocabulary(info: DatasetInfo) -> tuple[str, ...]:
    """Every folded word form that names an answer of this dataset: labels and their declared synonyms,
    plus the polarity words and their synonyms on sentiment tasks."""
    words = set(answer_matcher(info).forms)
    if is_sentiment(info) and info.task is not TaskType.REGRESSION:
        words |= set(answer_matcher(_polarity_info(info)).forms)
    return tuple(sorted(words))


def _polarity_info(info: DatasetInfo) -> DatasetInfo:
    return DatasetInfo(info.corpus, TaskType.REGRESSION, score_range=(-1.0, 1.0), task_name="sentiment")


def is_refusal(text: str) -> bool:
    """A short apology or refusal instead of a description."""
    return bool(text.strip()) and len(text) < 300 and bool(_REFUSAL.search(text))
