"""Answer parsing: a model's free text → a label, a score, or cleaned knowledge text.

Pure functions with the policy spelled out here and declared per template in YAML. None of
them raises on any input (a non-string is treated as its `str`, None as empty).

Labels (`parse_label`):
1. Closed reasoning blocks (`<think>…</think>`) are dropped; an unclosed one makes the answer
   unparseable (the model ran out of tokens before answering).
2. A JSON object (bare, or in a ```json fence; single quotes tolerated) wins: the first of the
   template's `json_keys` present gives the answer string (matched as below); a boolean maps
   through `yes_no`. A JSON object without a usable key falls through to the text.
3. The text is folded: casefold, `_` and `-` to spaces, curly quotes straightened, markdown
   emphasis dropped, whitespace collapsed.
4. A *mention* is a label name or one of its declared synonyms, bounded by non-alphanumerics;
   the longest form wins at a position. Canonical names beat synonyms; a synonym listed under
   several of the dataset's labels goes to the label sharing the longest prefix with it, then to
   the earlier label — so one table serves several label spaces (MELD "joy" ← "happy", IEMOCAP
   "happy" ← "joy", IEMOCAP-6 "frustrated" ← "frustration" although "angry" lists it too).
5. A mention right after a negator ("not", "n't", "never", "no", up to two filler words between)
   maps through `negations` ("not sarcastic" → sincere); without a mapping it is skipped
   ("not angry, but sad" → sad).
6. A leading "yes"/"no" (of the answer, or right after an answer cue) maps through `yes_no`.
7. Several labels: the first mention after the last "final answer" cue; else after the first
   answer-like cue ("answer:", "emotion is", "label:", …) that has one after it; else the
   earliest mention anywhere ("joy, surprise" → joy).

Scores (`parse_score`):
1. Reasoning blocks as above; JSON keys (`json_keys`) first.
2. Echoes of the scale ("from -3 to 3", "between -1 and 1", "[-3, 3]") are removed.
3. A number after a "final answer" cue; else after the first score cue ("score:", "rating of",
   "answer:" …); else the first number anywhere — each only if inside the dataset's range
   (`out_of_range: clip` clips instead of skipping).
4. Words ("positive", "very negative") map to scores only when the template sets
   `allow_words` — as fractions of the range's positive or negative half.

Free text (`parse_text`, knowledge elicitation): cleaned text; not ok when empty or a short
refusal ("I cannot…", "I'm sorry…"); `json_object` templates must yield a JSON object.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..types import Parsed

MAX_CHARS = 50_000  # longer outputs are cut before parsing, bounding regex work
_MAX_JSON_STARTS = 32

_THINK_CLOSED = re.compile(r"<think>.*?</think>", re.S | re.I)
_THINK_OPEN = re.compile(r"<think>", re.I)
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.S)

_NEGATOR = re.compile(
    r"(?:(?<![a-z0-9'])(?:not|never|no|nor|neither|hardly|barely)|n't)\s+"
    r"(?:(?:really|very|at|all|particularly|being|be|a|an|quite|that|so|too|overly|exactly|feel|feeling|"
    r"seem|seems|seeming|sound|sounds|look|looks|necessarily|obviously|clearly|just|actually|any|much|"
    r"intended|meant|as|to|of)\s+){0,3}$"
)
_NEG_BELIEF = re.compile(
    r"(?:do|does|did)(?:n't|\s+not)\s+(?:think|believe|feel|seem|sound|appear)\s+(?:like\s+)?(?:that\s+)?"
    r"(?:(?:the|this|his|her|their)\s+)?(?:speaker|person|man|woman|he|she|they|it|utterance|statement|line|"
    r"remark|punchline|clip|response)?\s*(?:is|was|'s|are|were|to\s+be)?\s*(?:being\s+|be\s+)?$"
)
_FINAL_CUE = re.compile(r"final\s+(?:answer|label|prediction|verdict|classification|score|rating)\s*(?:is|:|=|->)?\s*")
_LABEL_CUE = re.compile(
    r"(?<![a-z0-9])(?:answer|prediction|predicted\s+(?:label|emotion|sentiment|class)|label|classification|"
    r"emotion|sentiment|verdict|category|class|output|result)\s*(?:would\s+be|is(?![a-z'])|:|=|->)\s*"
)
_SCORE_CUE = re.compile(
    r"(?<![a-z0-9])(?:answer|score|rating|rate\s+(?:it|this)(?:\s+(?:as|at))?|sentiment(?:\s+score)?|"
    r"prediction|value|i(?:\s+would|'d)\s+(?:give|rate)(?:\s+(?:it|this))?(?:\s+(?:a|an))?)"
    r"\s*(?:of|would\s+be|is(?![a-z'])|:|=|->|at|as|around|about)?\s*(?:of|around|about|approximately|roughly|a|an)?\s*"
)
_YES_NO = re.compile(r"^\W*(yes|no)(?![a-z0-9])")
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.\d+|\d+|\.\d+)(?![\w])")
_REFUSAL = re.compile(
    r"^\W*(?:i'?m\s+sorry|sorry|i\s+apologi[sz]e|i\s+(?:cannot|can't|can\s+not|am\s+unable|'m\s+unable|"
    r"am\s+not\s+able|'m\s+not\s+able|do\s+not\s+have|don't\s+have)|as\s+an\s+ai|unfortunately,?\s+i\s+"
    r"(?:cannot|can't|am\s+unable))"
)


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _negated(folded: str, pos: int) -> bool:
    """Whether the mention at `pos` is negated ("not sarcastic", "don't think he is sarcastic")."""
    before = folded[max(0, pos - 80) : pos]
    return bool(_NEGATOR.search(before) or _NEG_BELIEF.search(before))


_DEFAULT_LABEL_KEYS = ("answer", "label", "prediction", "emotion", "sentiment", "class", "category")
_DEFAULT_SCORE_KEYS = ("score", "sentiment_score", "sentiment", "rating", "value", "answer", "prediction")


def _as_text(text: Any) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        try:
            text = str(text)
        except Exception:
            return ""
    return text[:MAX_CHARS]


def _never_raises(parse: Callable[..., Parsed]) -> Callable[..., Parsed]:
    """A parser bug must not take down a run: any exception becomes an unparsed answer that says why."""

    @functools.wraps(parse)
    def safe(*args: Any, **kwargs: Any) -> Parsed:
        try:
            return parse(*args, **kwargs)
        except Exception as e:
            return Parsed(None, False, f"parser error: {type(e).__name__}: {e}")

    return safe


def _unanswered(truncated: bool) -> Parsed:
    """Nothing left to parse: the reasoning ran out of tokens, or the output was empty."""
    return Parsed(None, False, "unterminated <think> block" if truncated else "empty output")


def _answer_body(text: Any) -> tuple[str, dict[str, Any] | None] | Parsed:
    """Step 1 of the label and score policies: the answer without reasoning, and its JSON object if any;
    an unanswered Parsed when nothing is left."""
    body, truncated = strip_reasoning(_as_text(text))
    if not body.strip():
        return _unanswered(truncated)
    return body, find_json(body)


def strip_reasoning(text: str) -> tuple[str, bool]:
    """Drop closed `<think>` blocks; the flag says an unclosed one was left (truncated reasoning)."""
    text = _THINK_CLOSED.sub(" ", text)
    m = _THINK_OPEN.search(text)
    if m:
        return text[: m.start()], True
    return text, False


def fold(text: str) -> str:
    """Case/punctuation folding used for label matching (keeps apostrophes and word order)."""
    text = text.casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"[*_#`~\-\u2010-\u2014]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def find_json(text: str) -> Any | None:
    """The first JSON object in `text` (fenced or bare; single quotes tolerated), or None."""
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    decoder = json.JSONDecoder()
    for cand in candidates:
        starts = [i for i, c in enumerate(cand) if c == "{"][:_MAX_JSON_STARTS]
        for i in starts:
            chunk = cand[i:]
            for attempt in (chunk, chunk.replace("'", '"')):
                try:
                    obj, _ = decoder.raw_decode(attempt)
                except (ValueError, RecursionError):
                    continue
                if isinstance(obj, dict):
                    return obj
    return None


def _json_value(obj: Mapping[str, Any], keys: Sequence[str]) -> Any | None:
    """The value of the first of `keys` (case/space-insensitive) present in obj, searching nested dicts."""
    norm = {fold(str(k)).replace(" ", "_"): v for k, v in obj.items()}
    for key in keys:
        k = fold(key).replace(" ", "_")
        if k in norm and norm[k] is not None:
            return norm[k]
    for v in obj.values():
        if isinstance(v, dict):
            found = _json_value(v, keys)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class LabelMatcher:
    """Matches label mentions for one label space; built once per (template, dataset)."""

    labels: tuple[str, ...]
    forms: dict[str, str]  # folded surface form -> canonical label
    pattern: re.Pattern[str] | None
    negations: dict[str, str]
    yes_no: dict[str, str]
    json_keys: tuple[str, ...]

    @classmethod
    def build(
        cls,
        labels: Sequence[str],
        synonyms: Mapping[str, Iterable[str]] | None = None,
        negations: Mapping[str, str] | None = None,
        yes_no: Mapping[str, str] | None = None,
        json_keys: Sequence[str] = (),
    ) -> LabelMatcher:
        """Only synonyms/negations/yes-no entries whose labels are in `labels` take effect."""
        active = {fold(lab): lab for lab in labels}
        forms: dict[str, str] = {}
        for lab in labels:
            forms.setdefault(fold(lab), lab)
        syn = {fold(k): list(v) for k, v in (synonyms or {}).items()}
        claims: dict[str, list[str]] = {}
        for lab in labels:
            for form in syn.get(fold(lab), []):
                f = fold(str(form))
                if f and f not in forms:
                    claims.setdefault(f, []).append(lab)
        for f, labs in claims.items():
            # several labels list the same synonym: the one whose name shares the longest prefix
            # with it wins ("frustration" -> frustrated, not angry), then the earlier label
            forms[f] = max(labs, key=lambda lab: (_common_prefix(f, fold(lab)), -labels.index(lab)))
        neg = {
            active[fold(a)]: active[fold(b)]
            for a, b in (negations or {}).items()
            if fold(a) in active and fold(b) in active
        }
        yn = {fold(k): active[fold(v)] for k, v in (yes_no or {}).items() if fold(v) in active}
        pattern = None
        if forms:
            alts = "|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f)))
            pattern = re.compile(rf"(?<![a-z0-9])(?:{alts})(?![a-z0-9])")
        return cls(tuple(labels), forms, pattern, neg, yn, tuple(json_keys) or _DEFAULT_LABEL_KEYS)

    def mentions(self, folded: str, start: int = 0) -> list[tuple[int, str, str]]:
        """(position, label, how) for every usable mention in folded[start:], in order."""
        out: list[tuple[int, str, str]] = []
        if self.pattern is None:
            return out
        for m in self.pattern.finditer(folded, start):
            label = self.forms[m.group(0)]
            if _negated(folded, m.start()):
                if label in self.negations:
                    out.append((m.start(), self.negations[label], f"negated {m.group(0)!r}"))
                continue
            how = "label" if m.group(0) == fold(label) else f"synonym {m.group(0)!r}"
            out.append((m.start(), label, how))
        return out

    def _yes_no(self, folded: str) -> str | None:
        if not self.yes_no:
            return None
        m = _YES_NO.match(folded)
        return self.yes_no.get(m.group(1)) if m else None

    def match_text(self, folded: str) -> Parsed | None:
        """Cue, yes/no and mention policy (steps 5–7 of the module doc) on folded text."""
        finals = list(_FINAL_CUE.finditer(folded))
        if finals:
            end = finals[-1].end()
            hit = self._after(folded, end, "final answer cue")
            if hit:
                return hit
        for cue in _LABEL_CUE.finditer(folded):
            hit = self._after(folded, cue.end(), "answer cue")
            if hit:
                return hit
        yn = self._yes_no(folded)
        if yn:
            return Parsed(yn, True, "leading yes/no")
        found = self.mentions(folded)
        if found:
            _, label, how = found[0]
            return Parsed(label, True, f"earliest mention ({how})")
        return None

    def _after(self, folded: str, pos: int, where: str) -> Parsed | None:
        yn = self._yes_no(folded[pos:])
        if yn:
            return Parsed(yn, True, f"yes/no after {where}")
        found = self.mentions(folded, pos)
        if found:
            _, label, how = found[0]
            return Parsed(label, True, f"{how} after {where}")
        return None

    def match_json_flags(self, obj: Mapping[str, Any]) -> Parsed | None:
        """`{"sarcastic": false}` / `{"is_humorous": true}`: a boolean under a key that names a label."""
        for key, value in obj.items():
            if not isinstance(value, bool):
                continue
            found = self.mentions(fold(str(key)))
            if found:
                label = found[0][1]
                label = label if value else self.negations.get(label)
                if label:
                    return Parsed(label, True, f"json flag {key!r}")
        return None

    def match_json_value(self, value: Any) -> Parsed | None:
        if isinstance(value, bool):
            label = self.yes_no.get("yes" if value else "no")
            return Parsed(label, True, "json boolean") if label else None
        if isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            folded = fold(str(value))
            if folded in self.forms:
                return Parsed(self.forms[folded], True, "json value")
            hit = self.match_text(folded)
            if hit:
                return Parsed(hit.value, True, f"json value, {hit.reason}")
        return None


@_never_raises
def parse_label(text: Any, matcher: LabelMatcher) -> Parsed:
    """Label policy of the module doc. Never raises."""
    answer = _answer_body(text)
    if isinstance(answer, Parsed):
        return answer
    body, obj = answer
    if obj is not None:
        value = _json_value(obj, matcher.json_keys)
        hit = matcher.match_json_value(value) if value is not None else matcher.match_json_flags(obj)
        if hit:
            return hit
    folded = fold(body)
    hit = matcher.match_text(folded)
    if hit:
        return hit
    return Parsed(None, False, f"no label of {', '.join(matcher.labels)} found")


# ---------------------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class ScorePolicy:
    lo: float
    hi: float
    json_keys: tuple[str, ...] = _DEFAULT_SCORE_KEYS
    words: tuple[tuple[str, float], ...] = ()  # folded word -> fraction of the range half, -1..1
    allow_words: bool = False
    out_of_range: str = "skip"  # or "clip"

    def inside(self, x: float) -> bool:
        return self.lo - 1e-9 <= x <= self.hi + 1e-9

    def accept(self, x: float) -> float | None:
        if not math.isfinite(x):
            return None
        if self.inside(x):
            return x + 0.0  # normalises -0.0
        if self.out_of_range == "clip":
            return min(max(x, self.lo), self.hi)
        return None

    def word_value(self, fraction: float) -> float:
        return fraction * self.hi if fraction >= 0 else fraction * -self.lo


def _score_clean(text: str) -> str:
    text = text.casefold().replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", "-")
    text = text.replace("\u2019", "'")
    text = re.sub(r"[*_#`]+", " ", text)
    return re.sub(r"[ \t]+", " ", text)


@functools.lru_cache(maxsize=64)
def _range_echo(policy: ScorePolicy) -> re.Pattern[str]:
    """Matches an echo of the scale: its low bound, a few non-digit words, its high bound."""

    def num(x: float) -> str:
        forms = {f"{x:g}", f"{x:.1f}"}
        forms |= {"+" + f for f in list(forms) if not f.startswith("-")}
        return "(?:" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) + ")"

    return re.compile(rf"(?<![\w.]){num(policy.lo)}(?![\d.])[^\d\n]{{0,40}}?(?<![\w.]){num(policy.hi)}(?![\d.])")


def _numbers(text: str, start: int = 0, end: int | None = None) -> list[float]:
    out = []
    for m in _NUMBER.finditer(text, start, len(text) if end is None else end):
        try:
            out.append(float(m.group(0)))
        except ValueError:
            continue
    return out


def _first_accepted(values: Iterable[float], policy: ScorePolicy) -> float | None:
    for v in values:
        got = policy.accept(v)
        if got is not None:
            return got
    return None


def _number_after(text: str, pos: int, policy: ScorePolicy) -> float | None:
    """The number that directly follows a cue (within a short window), if accepted."""
    m = _NUMBER.search(text, pos, min(len(text), pos + 12))
    if not m or text[pos : m.start()].strip(" :=(\"'"):
        return None
    try:
        return policy.accept(float(m.group(0)))
    except ValueError:
        return None


@functools.lru_cache(maxsize=64)
def _word_pattern(words: tuple[tuple[str, float], ...]) -> re.Pattern[str]:
    """Matches any of the policy's sentiment words, longest first (compiled once per policy)."""
    alts = "|".join(re.escape(w) for w, _ in sorted(words, key=lambda wv: (-len(wv[0]), wv[0])))
    return re.compile(rf"(?<![a-z0-9])(?:{alts})(?![a-z0-9])")


def _from_words(folded: str, policy: ScorePolicy) -> float | None:
    if not policy.words:
        return None
    table = dict(policy.words)
    for m in _word_pattern(policy.words).finditer(folded):
        if _negated(folded, m.start()):
            continue
        return policy.word_value(table[m.group(0)])
    return None


@_never_raises
def parse_score(text: Any, policy: ScorePolicy) -> Parsed:
    """Score policy of the module doc. Never raises."""
    answer = _answer_body(text)
    if isinstance(answer, Parsed):
        return answer
    body, obj = answer
    if obj is not None:
        value = _json_value(obj, policy.json_keys)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            got = policy.accept(float(value))
            if got is not None:
                return Parsed(got, True, "json number")
        elif isinstance(value, str):
            got = _first_accepted(_numbers(_score_clean(value)), policy)
            if got is not None:
                return Parsed(got, True, "json string")
            if policy.allow_words:
                got = _from_words(fold(value), policy)
                if got is not None:
                    return Parsed(got, True, "json word")
    clean = _score_clean(body)
    finals = list(_FINAL_CUE.finditer(clean))
    if finals:
        got = _number_after(clean, finals[-1].end(), policy)
        if got is not None:
            return Parsed(got, True, "number after final answer cue")
    for cue in _SCORE_CUE.finditer(clean):
        got = _number_after(clean, cue.end(), policy)
        if got is not None:
            return Parsed(got, True, "number after score cue")
    nums = _numbers(_range_echo(policy).sub(" ", clean))
    got = _first_accepted(nums, policy)
    if got is not None:
        return Parsed(got, True, "first number in range")
    if policy.allow_words:
        got = _from_words(fold(body), policy)
        if got is not None:
            return Parsed(got, True, "sentiment word")
    if nums:
        shown = ", ".join(f"{n:g}" for n in nums[:5])
        return Parsed(None, False, f"number(s) out of range [{policy.lo:g}, {policy.hi:g}]: {shown}")
    return Parsed(None, False, "no number found")


# ------------------------------------------------------------------------------------ free text


@_never_raises
def parse_text(text: Any, *, json_object: bool = False, refusal_max_chars: int = 300) -> Parsed:
    """Cleaned knowledge text (or a compact JSON object string when `json_object`). Never raises."""
    body, truncated = strip_reasoning(_as_text(text))
    body = body.strip()
    fence = re.fullmatch(r"```[a-zA-Z]*\s*(.*?)\s*```", body, re.S)
    if fence:
        body = fence.group(1).strip()
    body = re.sub(r"[ \t]+\n", "\n", body)
    body = re.sub(r"\n{3,}", "\n\n", body)
    if not body:
        return _unanswered(truncated)
    if len(body) <= refusal_max_chars and _REFUSAL.match(fold(body)):
        return Parsed(None, False, "refusal")
    if json_object:
        obj = find_json(body)
        if obj is None:
            return Parsed(None, False, "no JSON object")
        return Parsed(json.dumps(obj, ensure_ascii=False), True, "json object")
    return Parsed(body, True, "text")
