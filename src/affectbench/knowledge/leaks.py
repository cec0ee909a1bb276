"""Label leakage in knowledge texts: does a text state the gold answer, or only name an evidence cue?

A knowledge text *states the answer* when it names the gold answer — the label, one of its synonyms
declared by the dataset's answer template (`prompts.parsing.LabelMatcher`), or for sentiment the gold
polarity word — as what the clause asserts about the speaker, the utterance or the verdict; it *names
an evidence cue* when the mention is asserted of the face, voice, words or a lexicon ("face: happy
0.71", "the voice sounds sad", "a sarcastic tone", "words: positive (vader +0.62)"), or when a lexicon
polarity score has the gold sign. What a clause asserts is read from its frame, not from whether a cue
word occurs somewhere in it (`mention_kind`): a verdict frame ("the answer is", "overall", "therefore",
"so the speaker is") states the answer whatever evidence it cites ("Given the exaggerated tone, the
answer is sarcastic."); otherwise the subject of the mention (the words before its copula or colon:
"the voice sounds", "face:") or the noun it modifies ("sarcastic tone", "anger in the face") decides.
On a regression dataset a number asserted as the score on the dataset's own scale ("sentiment score is
+2.0 on the -3..3 scale", "Sentiment: 2.5") states the answer when it has the gold polarity.
`leak_kind` tells the kinds apart; only answer-stating counts as a leak (`leaks`), cue-naming is
reported as `cue_rate`. The frame words are English and Chinese; the cue-frame rule follows the
attribution view of evidence vs conclusion statements (the claim, not its support, is what leaks).
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
LEXICON_SCORE = re.compile(r"(?P<name>vader|compound|polarity|valence)\s*[:=]?\s*(?P<x>[+-]?\d+(?:\.\d+)?)", re.I)

_NUM = r"[+-]?\d+(?:\.\d+)?"
# A number asserted as the answer score: named as the sentiment/score/rating/answer ("sentiment score is
# +2.0", "Sentiment: 2.5", "情感分数为 0.8"), or placed on a scale ("2 on the -3..3 scale", "2 out of 3").
ANSWER_SCORE = re.compile(
    r"(?<![a-z])(?P<name>sentiment(?:\s+(?:score|rating|value|intensity|polarity|label))?|(?:final|overall|predicted)"
    r"\s+(?:score|rating|sentiment)|rating|answer|label|prediction|情感(?:分数|得分|值|强度|极性)?|得分|评分|分数)"
    r"\s*(?:is|was|would\s+be|of|=|:|为|是|at|around|about|≈|~)?\s*(?:about|around|roughly|approximately|~|约)?\s*"
    rf"(?P<x>{_NUM})(?![\d.]*\s*%)"
    rf"|(?P<y>{_NUM})\s*(?:on\s+(?:the|a)\s+(?:{_NUM}\s*(?:\.\.|to|–|-)\s*{_NUM}\s+)?(?:sentiment\s+)?scale"
    rf"|out\s+of\s+{_NUM}|/\s*\d+(?![\d.]))",
    re.I,
)
_LEXICON_BEFORE = re.compile(r"(?:vader|compound|hownet|lexicon|nrc|textblob)\W*(?:\w+\W+){0,2}$", re.I)


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


def plain_text(text: str) -> str:
    """NFKC with the minus sign as ASCII, so numbers read as written ("−3" → "-3")."""
    import unicodedata

    return unicodedata.normalize("NFKC", text).replace("\u2212", "-").replace("\u2013", "-")


def scale_scores(text: str, info: DatasetInfo) -> list[tuple[int, int, float]]:
    """(start, end, value) of every number `text` asserts as the answer score on `info`'s scale
    (`ANSWER_SCORE`, within `info.score_range`; a lexicon's own score such as "vader compound score
    0.6" is not one). Empty for datasets without a score scale. Offsets index `plain_text(text)`."""
    if info.score_range is None:
        return []
    lo, hi = info.score_range
    plain = plain_text(text)
    out = []
    for m in ANSWER_SCORE.finditer(plain):
        group = "x" if m.group("x") is not None else "y"
        if _LEXICON_BEFORE.search(plain[max(0, m.start() - 40) : m.start() + (len(m.group("name") or ""))]):
            continue
        x = float(m.group(group))
        if lo - 1e-9 <= x <= hi + 1e-9:
            out.append((m.start(group), m.end(group), x))
    return out


# A verdict frame: what follows states the answer, whatever evidence the clause also names.
_VERDICT = re.compile(
    r"(?<![a-z])(?:answer|label|verdict|conclu\w*|overall|in summary|in short|all in all|final(?:ly)?|"
    r"classif\w*|categor\w*|predict\w*|therefore|thus|hence|so (?:the|it|this|he|she|they|i)\b|"
    r"which means|this means|means (?:the|that)|i (?:would|'d) say|"
    r"(?:the )?(?:overall )?(?:sentiment|emotion|feeling|mood|attitude) (?:is|was|seems|appears)|"
    r"speaker is|(?:it|this|that) (?:is|was|seems))(?![a-z])"
    r"|答案|结论|总体|整体|总的来说|综合|因此|所以|判断|属于|标签|类别",
    re.I,
)
# The copula or colon that attributes a mention to a subject ("the voice sounds sad", "face: happy").
_COPULA = re.compile(
    r"(?<![a-z])(?:is|are|was|were|seems?|sounds?|looks?|appears?|feels?|shows?|suggests?|indicates?|"
    r"conveys?|reads as|comes across as|expresses|displays?|reflects?)(?![a-z])|[:=]",
    re.I,
)
_PERSON = re.compile(
    r"(?<![a-z])(?:speaker|person|character|he|she|they|it|this|utterance|clip|man|woman|i|we)(?![a-z])"
)
_CUE_AFTER = re.compile(
    r"^\s*(?:(?:in|on|from|of|through)\s+(?:the\s+|his\s+|her\s+|their\s+|its\s+|a\s+|an\s+)?)?(?:[a-z]+\s+)?"
    + _CUE_WORDS.pattern,
    re.I,
)
_SCORE_AFTER = re.compile(r"^\s*\(?\s*[+-]?\d")


def _cjk(text: str) -> bool:
    return bool(re.search(r"[\u4e00-\u9fff]", text))


def mention_kind(clause: str, start: int, end: int) -> str:
    """ "answer" or "cue": what the clause asserts of the mention at clause[start:end] (see the module
    docstring): a verdict frame before it → answer; its subject (the words before its copula or colon,
    possessives dropped) names a cue and no person → cue; it modifies a cue noun ("sarcastic tone",
    "anger in the face") → cue; an item of a list headed by a cue ("face: happy 0.71, neutral 0.20")
    → cue; otherwise → answer. Chinese clauses: a verdict word before it → answer, else a cue word
    anywhere in the clause → cue."""
    before, after = clause[:start], clause[end:]
    if _cjk(clause):
        if _VERDICT.search(before):
            return "answer"
        return "cue" if _CUE_WORDS.search(clause) else "answer"
    local = re.split(r"[,(]", before)[-1]  # the part of the clause this mention belongs to
    if _VERDICT.search(local):
        return "answer"
    if _CUE_AFTER.match(re.split(r"[,;]", after)[0]):
        return "cue"
    cops = list(_COPULA.finditer(local))
    if cops:
        subject = local[: cops[-1].start()]
        words = [w for w in re.findall(r"[a-z']+", subject) if not w.endswith("'s")][-3:]
        named = " ".join(words)
        if _PERSON.search(named):
            return "answer"
        if _CUE_WORDS.search(named):
            return "cue"
    header = before.split(":", 1)[0] if ":" in before else ""
    if header and _CUE_WORDS.search(header) and not _VERDICT.search(before):
        return "cue"  # an item of a list of cue values
    if not cops and _CUE_WORDS.search(local) and not _PERSON.search(local):
        return "cue"  # "smiling, happy face" style descriptions of a cue with no verdict
    if not local.strip() and _SCORE_AFTER.match(after) and _CUE_WORDS.search(before):
        return "cue"
    return "answer"


def leak_kind(text: str | None, target: Any, info: DatasetInfo) -> str | None:
    """How `text` gives the gold answer away: "answer" (states it), "cue" (names it as evidence), or None.

    A mention of the gold label, one of its declared synonyms, or (sentiment) the gold polarity is
    classified by what its clause (between . ; ! ? or line ends, CJK stops too) asserts
    (`mention_kind`); negated mentions do not count ("not happy"). On a regression dataset a number
    asserted as the score on its scale with the gold polarity is "answer" (`scale_scores`). On
    sentiment tasks a lexicon score of the gold sign ("vader +0.62" for a positive target) is a "cue".
    "answer" wins over "cue" when both occur.
    """
    if not text:
        return None
    gold = _gold_label(target, info)
    if gold is None:
        return None
    from ..prompts.parsing import fold

    if info.task is TaskType.REGRESSION and any(polarity_word(x) == gold for _, _, x in scale_scores(text, info)):
        return "answer"
    folded = fold(text)
    kind = None
    for m in answer_matcher(info).all_mentions(folded):
        if m.label != gold:
            continue
        clause_start = max((c.end() for c in _CLAUSE_END.finditer(folded, 0, m.start)), default=0)
        end = _CLAUSE_END.search(folded, m.start)
        clause = folded[clause_start : end.start() if end else len(folded)]
        if mention_kind(clause, m.start - clause_start, m.end - clause_start) == "answer":
            return "answer"
        kind = "cue"
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
