"""Answer parsing: a model's free text → a label, a score, or cleaned knowledge text.

Pure functions with the policy spelled out here and declared per template in YAML. None of
them raises on any input (a non-string is treated as its `str`, None as empty).

Every unread answer carries one machine reason from `types.UNREAD_REASONS` in `Parsed.unread`
(empty, truncated — an unclosed `<think>`, reasoning_only — a closed reasoning block and nothing
after it, refused, ambiguous, no_label, out_of_range), next to the human description in `reason`.

Labels (`parse_label`):
1. Closed reasoning blocks (`<think>…</think>`) are dropped; an unclosed one makes the answer
   unread (`truncated`: the model ran out of tokens before answering).
2. A JSON object (bare, or in a ```json fence; single quotes tolerated) wins: the first of the
   template's `json_keys` present gives the answer string (matched as below); a boolean maps
   through `yes_no`; a list naming several labels is `ambiguous`. A JSON object without a usable
   key falls through to the text. A short refusal ("I cannot…", "抱歉", "无法判断") is `refused`.
3. The text is folded: NFKC, casefold, `_` and `-` to spaces, curly quotes straightened, markdown
   emphasis dropped, whitespace collapsed (line breaks kept as one).
4. A *mention* is a label name or one of its declared synonyms (English and Chinese), bounded by
   non-alphanumerics, with a plural/-s ending tolerated ("Negatives"); the longest form wins at a
   position. Canonical names beat synonyms; a synonym listed under several of the dataset's labels
   goes to the label sharing the longest prefix with it, then to the earlier label — so one table
   serves several label spaces (MELD "joy" ← "happy", IEMOCAP "happy" ← "joy").
5. A mention right after a negator ("not", "n't", "never", "no", up to three filler words; Chinese
   不/不是/并不/没有/非 with fillers; "don't think he is") maps through `negations` ("not sarcastic"
   → sincere, "不是讽刺" → sincere), which take effect only when the two labels are the whole label
   set; otherwise the mention is skipped ("not angry, but sad" → sad). Only negated mentions and
   nothing else → `ambiguous` (several labels are left: "not positive" on a 3-way set).
6. Option lists are not answers: ≥3 labels, or every label of the set, joined only by separators
   ("neutral, joy, …, disgust", "sarcastic or sincere") are removed before the next steps.
7. The label right after the last final cue ("final answer", "overall", "in conclusion", 最终,
   总体, 综合); else a label opening the answer and ending its first phrase ("Anger. The voice…");
   else the label right after the last answer cue ("answer:", "emotion is", "I'd say", 答案, 情绪是);
   else the one label all mentions agree on, or the one named without a hedge ("happy, though a hint
   of surprise" → happy; "maybe", "slightly", 有点, 一丝 hedge); two different labels with none of these cues →
   `ambiguous` (never the earlier one silently), as is "X or Y" after a cue. A verdict-first answer
   ("Yes. The remark…", "No, the dialogue…" — the format "start with Yes or No" asks for) is read by
   its opening yes/no through `yes_no`, right after a leading label (`ambiguous` when the next
   sentence names only the other label). An answer read only by a bare mention (or not at all) that
   states it cannot decide ("impossible to determine whether…", "cannot be determined", 无法判断)
   is `refused`. Only then a leading
   "yes"/"no" (是/否/不是) maps through `yes_no`, so "No doubt, the speaker is sarcastic." →
   sarcastic. Nothing → `no_label`.

Scores (`parse_score`):
1. Reasoning blocks as above; JSON keys (`json_keys`) first.
2. Every Unicode minus or dash before a number is a minus (`MINUS_CHARS`: dash punctuation but
   the CJK wave dashes, the minus signs); NFKC turns full-width digits and punctuation to ASCII;
   负/正 before a digit are -/+.
3. Restatements of the scale ("from -3 to 3", "(-3 to +3)", "[-1, 1]", "从-1到1", "-3 = very
   negative and 3 = very positive", "out of 3", "/3") are removed: they are never the answer.
4. Candidates are the numbers left, without list enumerators ("1. …", "2) …" at a line or
   sentence start), counts ("2 movies", "3个"), years, percentages, times and "#2".
5. The first candidate in the sentence of the last final cue ("final", "overall", "in
   conclusion", 最终/总体/综合); else a number opening the answer and ending its first phrase
   (the format the prompt asks for: "-1.5\n\nThe tone…"); else the first candidate after the
   last score cue ("score", "rating", "answer", "I'd rate it", 得分/分数/评分/答案/情感得分);
   else the single value all candidates share; else the number closing the answer (only
   punctuation or a parenthetical after it); else `ambiguous`. "1 or 2", "1-2", "1到2" right at
   the chosen number are `ambiguous` too. The chosen number is then checked against the
   dataset's range: `out_of_range` (or clipped with `out_of_range: clip`).
6. Words ("positive", "very negative") map to scores only when the template sets `allow_words` —
   as fractions of the range's positive or negative half, and only when no number is there.

Free text (`parse_text`, knowledge elicitation): cleaned text; not ok when empty or a short
refusal ("I cannot…", "I'm sorry…"); `json_object` templates must yield a JSON object.
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.types import Parsed
from .negation import negated, number_negated, number_scopes, scopes

MAX_CHARS = 50_000  # longer outputs are cut before parsing, bounding regex work
_MAX_JSON_STARTS = 32

# Reasoning blocks: <think>…</think> (Qwen3, DeepSeek-R1, QwQ), <thinking>, <reasoning>, and Kimi-VL's
# ◁think▷…◁/think▷. Templates of thinking models open the block in the prompt, so a closing tag
# without its opening one still ends the reasoning.
_THINK_CLOSE = re.compile(r"</(?:think|thinking|reasoning)>|◁/think▷", re.I)
_THINK_OPEN = re.compile(r"<(?:think|thinking|reasoning)>|◁think▷", re.I)
# An explicit answer span (DeepSeek-R1-style <answer>…</answer>, R1-V and Video-R1 reproductions).
_ANSWER_SPAN = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
# Where a model starts writing the next turn itself: role markers of the common chat formats.
_ROLE_MARKER = re.compile(
    r"\n\s*(?:#+\s*)?(?:human|user|assistant|system|instruction|question)\s*:"
    r"|<\|(?:im_start|im_end|endoftext|eot_id|start_header_id|end_of_text|user|assistant|end)\|>"
    r"|<(?:start_of_turn|end_of_turn)>|\[inst\]|</s>",
    re.I,
)
_FENCE = re.compile(r"```[a-zA-Z]*\s*(.*?)```", re.S)

_FINAL_CUE = re.compile(
    r"(?<![a-z])(?:final(?:\s+(?:answer|label|prediction|verdict|classification|emotion|sentiment|choice))?|"
    r"overall(?=\s*(?:$|[,:;.\n]|(?:i|it|it's|this|that|he|she|they|the\s+(?:speaker|answer|emotion|sentiment|label))(?![a-z])))"
    r"|in\s+conclusion|in\s+summary|to\s+conclude|all\s+in\s+all)(?![a-z])"
    r"|最终(?:答案|结论|判断|结果)?|最后(?:答案|结论)?|总体(?:来看|而言|上)?|综合(?:来看|考虑|判断)?|总的来说|总之"
)
_LABEL_CUE = re.compile(
    r"(?<![a-z0-9])(?:(?:answer|prediction|predicted\s+(?:label|emotion|sentiment|class)|label|classification|"
    r"emotion|sentiment|verdict|category|class|output|result|choice)\s*(?:would\s+be|is(?![a-z'])|:|=|->)|"
    r"i(?:'d|\s+would)\s+(?:say|choose|pick|go\s+with|classify\s+(?:it|this)\s+as|label\s+(?:it|this)\s+as)|"
    r"most\s+likely|best\s+described\s+as)"
    r"|答案|标签|情绪(?:是|为|：|:)|情感(?:是|为|：|:)|判断为|归类为|属于"
)
# A hedged mention is secondary: "happy, though there may be a hint of surprise" names happy.
_HEDGE = re.compile(
    r"(?:(?<![a-z])(?:hints?|touch|tinge|trace|bit|little|note|undertones?|shade)\s+of\s+(?:some\s+)?"
    r"|(?<![a-z])(?:maybe|perhaps|possibly|slightly|somewhat|mildly|a\s+bit|a\s+little)\s+(?:of\s+)?"
    r"|一点|有点|有些|略带|略微|些许|一丝|稍微|可能有|也许有)$"
)
_CUE_LABEL_WINDOW = 40  # characters after a cue in which its label must start (same sentence)
_YES_NO = re.compile(r"^[\W_]*(yes|no|是的|是|对|否|不是|不对)(?![a-z0-9])")
_YES_NO_ZH = {"是的": "yes", "是": "yes", "对": "yes", "否": "no", "不是": "no", "不对": "no"}
# A verdict-first answer: a yes/no that opens the answer as its own phrase ("Yes. Chandler's…", "No, the
# dialogue…", "是的，…") — the format "Your answer should start with 'Yes' or 'No'" asks for.
_VERDICT = re.compile(r"^[\W_]*(yes|no|是的|是|对|否|不是|不对)\s*(?:[.!,;:。！，；：\n]|—|–|-\s)")
_VERDICT_END = re.compile(r"[.!?\n。！？]")
_REFUSAL = re.compile(
    r"^\W*(?:i'?m\s+sorry|sorry|i\s+apologi[sz]e|i\s+(?:cannot|can't|can\s+not|am\s+unable|'m\s+unable|"
    r"am\s+not\s+able|'m\s+not\s+able|do\s+not\s+have|don't\s+have)|as\s+an\s+ai|unfortunately,?\s+i\s+"
    r"(?:cannot|can't|am\s+unable)|抱歉|对不起|很遗憾|我无法|我不能|无法(?:判断|确定|识别|回答)|不能(?:判断|确定)|作为(?:一个)?(?:ai|人工智能))"
)
# A statement that the answer cannot be decided ("it is impossible to determine if humor was present",
# "cannot be determined", 无法判断): the uncertainty cues of the same kind as a refusal, anywhere.
_UNDECIDED = re.compile(
    r"(?<![a-z])(?:(?:impossible|not\s+possible|unable|cannot|can't|can\s+not|could\s+not|couldn't)\s+(?:to\s+)?"
    r"(?:determine|tell|assess|judge|confirm|conclude|say)\s+(?:if|whether|that)"
    r"|(?:cannot|can't|can\s+not|could\s+not)\s+be\s+(?:determined|assessed|confirmed|judged|concluded)"
    r"|undetermined|indeterminate)(?![a-z])|无法判断|无法确定|难以判断|不能确定|无从判断"
)
# Flag values: what a yes/no statement about a label says ("Sarcastic: No", {"sarcastic": 0}).
_FLAG_WORDS = {
    "yes": True, "true": True, "y": True, "1": True, "是": True, "是的": True, "对": True, "有": True,
    "no": False, "false": False, "n": False, "0": False, "否": False, "不是": False, "不对": False, "无": False,
    "没有": False, "present": True, "detected": True, "absent": False, "none": False, "not present": False,
    "not detected": False, "存在": True, "不存在": False,
}  # fmt: skip
_FLAG_ALT = "|".join(sorted(map(re.escape, _FLAG_WORDS), key=len, reverse=True))
_TEXT_FLAG = re.compile(rf"\s*[:=：]\s*({_FLAG_ALT})(?![a-z0-9])")
# A restated question answered yes/no: "Is the speaker being sarcastic? No." (group 1: the question).
_QUESTION_ANSWERED = re.compile(r"[?？]\s*(yes|no|是的|是|不是|否|对|不对)(?![a-z0-9])")


def flag_value(value: Any) -> bool | None:
    """A yes/no statement's value: a boolean, 0/1, or "yes"/"no"/"true"/"false"/"present"/"absent"/是/否
    (any case); else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        return _FLAG_WORDS.get(fold(value).strip(" .!。"))
    return None


# Separators of an enumerated option list ("neutral, joy, …, disgust", "sarcastic or sincere").
_LIST_GAP = re.compile(r"(?:\s|[,/|;、，；]|\bor\b|\band\b|或者|或|和|以及|…|\.\.\.)*")


def _common_prefix(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _refusal(body: str, max_chars: int = 300) -> bool:
    """A short answer that declines ("I cannot determine…", "Sorry…", "抱歉…", "无法判断")."""
    return len(body.strip()) <= max_chars and bool(_REFUSAL.match(fold(body)))


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
            return Parsed(None, False, f"parser error: {type(e).__name__}: {e}", "no_label")

    return safe


def _unanswered(truncated: bool, had_reasoning: bool = False) -> Parsed:
    """Nothing left to parse: the reasoning ran out of tokens, only reasoning came back, or nothing."""
    if truncated:
        return Parsed(None, False, "unterminated <think> block", "truncated")
    if had_reasoning:
        return Parsed(None, False, "only a reasoning block, no answer after it", "reasoning_only")
    return Parsed(None, False, "empty output", "empty")


def _answer_body(text: Any) -> tuple[str, dict[str, Any] | None] | Parsed:
    """Step 1 of the label and score policies: the answer without reasoning, and its JSON object if any;
    an unanswered Parsed when nothing is left."""
    raw = _as_text(text)
    body, truncated = strip_reasoning(raw)
    if not body.strip():
        return _unanswered(truncated, bool(raw.strip()))
    return body, find_json(body)


def split_reasoning(text: str) -> tuple[str, str | None, bool]:
    """(answer, reasoning, truncated): the text after the last closing reasoning tag is the answer
    and everything before it the reasoning — a closing tag without its opening one counts (the
    template opened the block in the prompt); an opening tag that never closes leaves the text
    before it as the answer and flags `truncated` (the model ran out of tokens while reasoning)."""
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        last = closes[-1]
        head = text[: last.start()]
        opened = _THINK_OPEN.search(head)
        reasoning = head[opened.end() :] if opened and not head[: opened.start()].strip() else head
        return text[last.end() :], reasoning.strip(), False
    m = _THINK_OPEN.search(text)
    if m:
        return text[: m.start()], text[m.end() :].strip(), True
    return text, None, False


def answer_span(text: str) -> str:
    """The answer proper: cut at a role marker (the model writing the next turn: "\\nHuman:",
    "<|im_start|>", …), then the last explicit `<answer>…</answer>` span when there is one."""
    cut = _ROLE_MARKER.search(text)
    if cut:
        text = text[: cut.start()]
    spans = [m.group(1) for m in _ANSWER_SPAN.finditer(text)]
    spans = [a for a in spans if a.strip()]
    return spans[-1] if spans else text


def strip_reasoning(text: str) -> tuple[str, bool]:
    """The answer without its reasoning (`split_reasoning`) and cut to its answer span (`answer_span`);
    the flag says an unclosed reasoning block was left (truncated reasoning)."""
    body, _, truncated = split_reasoning(text)
    return answer_span(body), truncated


def fold(text: str) -> str:
    """Case/punctuation folding used for label matching (keeps apostrophes and word order):
    NFKC (full-width forms → ASCII), casefold, curly quotes straightened, markdown and dashes → spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u201c", '"').replace("\u201d", '"')
    text = re.sub(r"[*_#`~\-\u2010-\u2014]+", " ", text)
    text = re.sub(r"[^\S\n]+", " ", text)
    return re.sub(r" ?\n[\s]*", "\n", text).strip()  # line breaks kept: "Sad\n\nThe voice…" leads with sad


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


# A key that holds the model's own answer among several: "first_emotion", "primary_emotion",
# "predicted_label" — not "second_emotion", "emotion_confidence" or "emotion_reasoning".
_SIDE_KEY = re.compile(
    r"(?:^|_)(?:second|secondary|third|other|alternative|alt|confidence|score|scores|prob|probability|"
    r"reason|reasoning|justification|explanation|evidence|intensity)(?:_|$)"
)


def _json_value(obj: Mapping[str, Any], keys: Sequence[str]) -> Any | None:
    """The value of the first of `keys` (case/space-insensitive) present in obj, searching nested dicts;
    else of the first key that holds one of `keys` as a word and names no side field (`_SIDE_KEY`):
    `{"first_emotion": "sadness", "second_emotion": "anger"}` answers sadness."""
    norm = {fold(str(k)).replace(" ", "_"): v for k, v in obj.items()}
    for key in keys:
        k = fold(key).replace(" ", "_")
        if k in norm and norm[k] is not None:
            return norm[k]
    wanted = {fold(key).replace(" ", "_") for key in keys}
    for k, v in norm.items():
        if v is not None and not isinstance(v, (dict, list)) and not _SIDE_KEY.search(k):
            if wanted & set(k.split("_")):
                return v
    for v in obj.values():
        if isinstance(v, dict):
            found = _json_value(v, keys)
            if found is not None:
                return found
    return None


# ---------------------------------------------------------------------------------------- labels


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    label: str  # the label this mention gives (after negation)
    how: str
    named: str  # the label named in the text (before negation)
    negated: bool


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
        """Only synonyms/negations/yes-no entries whose labels are in `labels` take effect; a negation
        a → b takes effect only when a and b are the whole label set ("not positive" means negative
        on a binary set, but leaves negative and neutral open on a 3-way set)."""
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
            if fold(a) in active and fold(b) in active and set(active) == {fold(a), fold(b)}
        }
        if len(labels) == 2:  # a binary label set: ruling one label out asserts the other
            neg = {labels[0]: labels[1], labels[1]: labels[0]}
        yn = {fold(k): active[fold(v)] for k, v in (yes_no or {}).items() if fold(v) in active}
        pattern = None
        if forms:

            def alt(f: str) -> str:
                # plurals and -s inflections of Latin words ("Negatives" -> negative)
                return re.escape(f) + ("(?:e?s)?" if len(f) >= 3 and f[-1].isascii() and f[-1].isalpha() else "")

            alts = "|".join(alt(f) for f in sorted(forms, key=lambda f: (-len(f), f)))
            pattern = re.compile(rf"(?<![a-z0-9])(?:{alts})(?![a-z0-9])")
        return cls(tuple(labels), forms, pattern, neg, yn, tuple(json_keys) or _DEFAULT_LABEL_KEYS)

    def _form(self, surface: str) -> str:
        if surface in self.forms:
            return surface
        for cut in (1, 2):
            if surface[:-cut] in self.forms:
                return surface[:-cut]
        return surface

    def all_mentions(self, folded: str, start: int = 0) -> list[_Mention]:
        """Every label mention in folded[start:], negated ones included, in order."""
        out: list[_Mention] = []
        if self.pattern is None:
            return out
        spans = scopes(folded)
        for m in self.pattern.finditer(folded, start):
            form = self._form(m.group(0))
            named = self.forms[form]
            if negated(spans, m.start()):
                label = self.negations.get(named, "")
                out.append(_Mention(m.start(), m.end(), label, f"negated {form!r}", named, True))
            else:
                how = "label" if form == fold(named) else f"synonym {form!r}"
                out.append(_Mention(m.start(), m.end(), named, how, named, False))
        return out

    def mentions(self, folded: str, start: int = 0) -> list[tuple[int, str, str]]:
        """(position, label, how) for every usable mention in folded[start:], in order (a negated
        mention counts only through `negations`)."""
        return [(m.start, m.label, m.how) for m in self.all_mentions(folded, start) if m.label]

    def _yes_no(self, folded: str) -> str | None:
        if not self.yes_no:
            return None
        m = _YES_NO.match(folded)
        if not m:
            return None
        return self.yes_no.get(_YES_NO_ZH.get(m.group(1), m.group(1)))

    def _echoes(self, folded: str, found: list[_Mention]) -> list[tuple[int, int]]:
        """Spans that enumerate the options (≥3 labels, or every label of the set, joined only by
        list separators): a restated option list, not an answer. Negated mentions are no echo:
        "no anger, joy or surprise" rules three labels out."""
        found = [m for m in found if not m.negated]
        spans, run = [], found[:1]
        for prev, cur in zip(found, found[1:], strict=False):
            gap = folded[prev.end : cur.start]
            if gap.strip() and _LIST_GAP.fullmatch(gap):
                run.append(cur)
                continue
            spans.append(run)
            run = [cur]
        if run:
            spans.append(run)
        out = []
        for r in spans:
            named = {m.named for m in r}
            if len(r) >= 2 and (len(named) >= 3 or named == set(self.labels)):
                out.append((r[0].start, r[-1].end))
        return out

    def match_text(self, folded: str) -> Parsed | None:
        """Statements first — "Sarcastic: No" flags, a restated question answered yes/no — then the
        echo, cue, leading-label, mention and yes/no policy (steps 4–8 of the module doc) on folded
        text: a Parsed (read, or unread as `ambiguous`), or None when no label is named at all."""
        found = self.all_mentions(folded)
        flags = []
        for m in found:
            v = _TEXT_FLAG.match(folded, m.end)
            if v and m.label and m.label == m.named:
                flags.append((m.label, _FLAG_WORDS[v.group(1)]))
        if flags:
            hit = self.decide_flags(flags, "flag")
            if hit is not None:
                return hit
        asked = None
        answered = list(_QUESTION_ANSWERED.finditer(folded)) if "?" in folded or "？" in folded else []
        if answered:
            q = answered[-1]  # the question runs back from its mark to the previous sentence end
            start = 1 + max(folded.rfind(c, 0, q.start()) for c in ".!?\n。！？")
            named = {m.label for m in found if start <= m.start < q.start() and m.label and m.label == m.named}
            if len(named) == 1:
                asked = self.decide_flags([(named.pop(), _FLAG_WORDS[q.group(1)])], "restated question answered")
                folded = folded[:start] + " " * (q.end() - start) + folded[q.end() :]
            else:  # a question naming no label (or several): its yes/no is read as a leading one
                folded = (folded[:start] + " " * (q.start() + 1 - start) + folded[q.start() + 1 :]).strip()
            found = self.all_mentions(folded)
        rest = self._match_plain(folded, found)
        if asked is not None and (rest is None or not rest.ok):
            return asked
        return rest

    def decide_flags(self, flags: Sequence[tuple[str, bool]], how: str) -> Parsed | None:
        """The label a set of (label, true/false) statements leaves: the one asserted; else, when
        statements rule labels out, the one label left (a binary set: the other label)."""
        yes = sorted({lab for lab, f in flags if f}, key=self.labels.index)
        no = {lab for lab, f in flags if not f}
        if len(yes) == 1:
            return Parsed(yes[0], True, f"{how} {yes[0]!r}: true")
        if len(yes) > 1:
            return Parsed(None, False, f"{how}s assert several labels: {', '.join(yes)}", "ambiguous")
        left = [lab for lab in self.labels if lab not in no]
        if len(left) == 1:
            return Parsed(left[0], True, f"{how} {', '.join(sorted(no))}: false; {left[0]!r} is left")
        if no:
            return Parsed(None, False, f"{how} rules out {', '.join(sorted(no))}; {len(left)} labels left", "ambiguous")
        return None

    def _match_plain(self, folded: str, found: list[_Mention]) -> Parsed | None:
        echoes = self._echoes(folded, found)
        if echoes:
            for a, b in echoes:
                folded = folded[:a] + " " * (b - a) + folded[b:]
            found = self.all_mentions(folded)
        finals = list(_FINAL_CUE.finditer(folded))
        for cue in reversed(finals):
            hit = self._after(folded, cue.end(), found, "final answer cue")
            if hit:
                return hit
        lead = self._leading(folded, found) or self._verdict(folded, found)
        if lead:
            return lead
        for cue in reversed(list(_LABEL_CUE.finditer(folded))):
            hit = self._after(folded, cue.end(), found, "answer cue")
            if hit:
                return hit
        usable = [m for m in found if m.label]
        given = sorted({m.label for m in usable}, key=self.labels.index)
        if len(given) == 1:
            first = usable[0]
            return Parsed(first.label, True, f"the only label named ({first.how})")
        if len(given) > 1:
            firm = [m for m in usable if not _HEDGE.search(folded[max(0, m.start - 30) : m.start])]
            if firm and len({m.label for m in firm}) == 1:
                return Parsed(firm[0].label, True, f"the only label named without a hedge ({firm[0].how})")
            return Parsed(None, False, f"labels compete and no cue decides: {', '.join(given)}", "ambiguous")
        yn = self._yes_no(folded)
        if yn:
            return Parsed(yn, True, "leading yes/no")
        if found:
            named = ", ".join(sorted({m.named for m in found}))
            return Parsed(None, False, f"only negated labels ({named}): more than one label is left", "ambiguous")
        if echoes:
            return Parsed(None, False, "the option list restated, no choice made", "ambiguous")
        return None

    def _verdict(self, folded: str, found: list[_Mention]) -> Parsed | None:
        """A verdict-first answer ("Yes. The remark is…", "No, the dialogue…") read by its opening
        yes/no through `yes_no`, like a leading label: what follows is its justification. When the
        next sentence names only the other label, un-negated ("No, it is sarcastic."), the two
        statements compete: `ambiguous`."""
        if not self.yes_no:
            return None
        m = _VERDICT.match(folded)
        if not m:
            return None
        label = self.yes_no.get(_YES_NO_ZH.get(m.group(1), m.group(1)))
        if label is None:
            return None
        end = _VERDICT_END.search(folded, m.end())
        stop = end.start() if end else len(folded)
        said = {x.label for x in found if m.end() <= x.start < stop and x.label and not x.negated}
        if said and label not in said:
            why = f"opening {m.group(1)!r} and the next sentence's {', '.join(sorted(said))} compete"
            return Parsed(None, False, why, "ambiguous")
        return Parsed(label, True, f"opening verdict {m.group(1)!r}")

    def _leading(self, folded: str, found: list[_Mention]) -> Parsed | None:
        """A label that opens the answer and ends its first phrase ("Anger. The voice is raised…")."""
        usable = [m for m in found if m.label]
        if not usable:
            return None
        first = usable[0]
        before = folded[: first.start]
        if not re.fullmatch(r"[\W_]*(?:(?:not|no|isn't|is not)\s+|不是|不|并不|并非|没有|非)?", before):
            return None
        after = folded[first.end :]
        if not re.match(r"\s*(?:$|[.!:;。！：；，,)\n]|\s+[(\[]|的|了|吧|啊)", after):
            return None
        rest = [m for m in usable[1:] if m.label != first.label]
        if rest and _LIST_GAP.fullmatch(folded[first.end : rest[0].start]):
            return None  # "joy, surprise": a list, not a leading label
        return Parsed(first.label, True, f"leading label ({first.how})")

    def _after(self, folded: str, pos: int, found: list[_Mention], where: str) -> Parsed | None:
        """The label right after a cue (same sentence, within a short window), or a yes/no there."""
        for i, m in enumerate(found):
            if m.start < pos:
                continue
            gap = folded[pos : m.start]
            if m.start - pos > _CUE_LABEL_WINDOW or re.search(r"[.!?。！？;；]\s|[\n。！？]", gap):
                break
            if not m.label:
                continue
            nxt = next((n for n in found[i + 1 :] if n.label and n.label != m.label), None)
            if nxt is not None and re.fullmatch(r"\s*(?:or|/|或者|或|还是)\s*", folded[m.end : nxt.start]):
                return Parsed(None, False, f"{m.label} or {nxt.label} after {where}", "ambiguous")
            return Parsed(m.label, True, f"{m.how} after {where}")
        yn = self._yes_no(folded[pos:])
        if yn:
            return Parsed(yn, True, f"yes/no after {where}")
        return None

    def match_json_flags(self, obj: Mapping[str, Any]) -> Parsed | None:
        """`{"sarcastic": 0}`, `{"is_humorous": "yes"}`, `{"anger": false, "joy": true}`: flag values
        (`flag_value`) under keys that name a label, read as the statements they make."""
        flags = []
        for key, value in obj.items():
            flag = flag_value(value)
            if flag is None:
                continue
            found = [m for m in self.all_mentions(fold(str(key))) if m.label]
            if found:
                m = found[0]
                flags.append((m.named, flag if not m.negated else not flag) if m.negated else (m.label, flag))
        return self.decide_flags(flags, "json flag") if flags else None

    def match_json_value(self, value: Any) -> Parsed | None:
        flag = flag_value(value) if isinstance(value, (bool, str)) else None
        if flag is not None:
            label = self.yes_no.get("yes" if flag else "no")
            return Parsed(label, True, "json yes/no") if label else None
        if isinstance(value, list):
            hits = [self.match_json_value(v) for v in value[:16]]
            read = {h.value for h in hits if h is not None and h.ok}
            if len(read) == 1:
                return Parsed(read.pop(), True, "json list")
            if len(read) > 1:
                shown = ", ".join(sorted(str(v) for v in read))
                return Parsed(None, False, f"json list names several labels: {shown}", "ambiguous")
            return None
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            folded = fold(str(value))
            if folded in self.forms:
                return Parsed(self.forms[folded], True, "json value")
            hit = self.match_text(folded)
            if hit:
                return Parsed(hit.value, True, f"json value, {hit.reason}") if hit.ok else hit
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
        hit = None
        if value is not None and flag_value(value) is None:
            hit = matcher.match_json_value(value)  # {"answer": "sarcastic"}
        hit = hit or matcher.match_json_flags(obj)  # {"sarcastic": 0}
        if hit is None and value is not None:
            hit = matcher.match_json_value(value)  # {"answer": "no"}: the template's yes/no
        if hit:
            return hit
        if isinstance(value, str) and value.strip():  # the answer field names something else: "concern"
            return Parsed(
                None, False, f"json answer {value[:40]!r} names no label of {', '.join(matcher.labels)}", "no_label"
            )
    folded = fold(body)
    if _refusal(body):
        return Parsed(None, False, "refusal", "refused")
    hit = matcher.match_text(folded)
    if (hit is None or hit.reason.startswith("the only label named")) and _UNDECIDED.search(folded):
        # only a bare mention (or nothing) against a statement that no decision can be made
        return Parsed(None, False, "the answer says it cannot decide", "refused")
    if hit:
        return hit
    return Parsed(None, False, f"no label of {', '.join(matcher.labels)} found", "no_label")


# ---------------------------------------------------------------------------------------- scores

# Every dash or minus a person or a model writes before a number means minus: Unicode's dash
# punctuation (category Pd) except the CJK wave dashes (〜 〰, "from … to"), and the minus
# signs of other categories. tests/prompts/test_scores.py enumerates them from unicodedata.
MINUS_CHARS = (
    "\u002d\u058a\u05be\u1400\u1806\u2010\u2011\u2012\u2013\u2014\u2015\u2e17\u2e1a\u2e3a\u2e3b\u2e40\u2e5d"
    "\u30a0\ufe31\ufe32\ufe58\ufe63\uff0d\U00010ead"  # dash punctuation (Pd)
    "\u02d7\u2052\u207b\u208b\u2212\u2796"  # minus signs: modifier, commercial, super/subscript, math, heavy
)
_TO_ASCII_MINUS = str.maketrans(dict.fromkeys(MINUS_CHARS, "-"))

# Bounded by ASCII letters/digits only: Chinese text runs into numbers ("得分为0.6", "3个").
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])[-+]?(?:\d+\.\d+|\d+|\.\d+)(?![A-Za-z0-9_])")
_SENTENCE_END = re.compile(r"[.!?。！？;；]\s|[。！？；\n]")
# Cues, strongest first. A "final" cue states the conclusion; a score cue introduces a value.
_SCORE_FINAL_CUE = re.compile(
    r"(?<![a-z])(?:final(?:ly)?|overall(?!\s+(?:tone|mood|sentiment\s+(?:of|in)|context|scene|impression|feeling|atmosphere))|in\s+conclusion|in\s+summary|to\s+conclude|all\s+in\s+all|in\s+total)"
    r"(?![a-z])|最终|最后|总体|综合|总的来说|总之|整体"
)
_SCORE_ANSWER_CUE = re.compile(
    r"(?<![a-z])(?:answer|score|rating|rated?|prediction|predicted|estimate|value|"
    r"i(?:\s+would|'d|\s+will|'ll)\s+(?:give|rate|say|go\s+with|assign|choose|put))(?![a-z])|"
    r"答案|得分|分数|评分|打分|分值|预测|回答"
)
# The reason of a score read only because it closes the text: not trusted when the text was cut at
# max_new_tokens (the answer never closed; see engine.scoring.read_given_finish).
CLOSING_NUMBER = "number closing the answer"
_CUE_WINDOW = 60  # characters after a cue in which its number must start (same sentence)
_LEADING_OK = re.compile(r"\s*(?:$|\n|[.,;!)]\s|[。，；！）(（])")  # what may follow a number that opens the answer
# Words that may follow a score; a bare integer followed by any other word is a count ("2 movies").
_AFTER_SCORE = frozenset(
    "out on to and or for as is was would will seems seem since because given with from but so points point pts "
    "in at overall which here then i it this that if considering based due reflecting indicating meaning means "
    "though although while whereas positive negative neutral slightly very mildly strongly moderately somewhat "
    "fairly quite rather leaning".split()
)
_COUNT_CJK = "个次人年月日岁部位条名种遍句项只本天周分钟秒"
_ENUMERATOR = re.compile(r"(?:\n|[.;!?。；！？]\s)\s*[(（]?\s*$")
_ALTERNATIVE = re.compile(r"\s*(?:or|to|and|/|~|～|或者|或|到|至|和|-)\s*(?=[-+]?(?:\d|\.\d))")


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


def score_clean(text: str) -> str:
    """Text normalised for number reading: every minus/dash → "-", NFKC (full-width digits and
    punctuation → ASCII), Chinese 负/正 before a digit → -/+, casefolded, markdown dropped."""
    text = unicodedata.normalize("NFKC", text.translate(_TO_ASCII_MINUS)).translate(_TO_ASCII_MINUS)
    text = re.sub(r"负\s*(?=\d|\.\d)", "-", text)
    text = re.sub(r"(?<![真纠公反])正\s*(?=\d|\.\d)", "+", text)
    text = text.casefold().replace("\u2019", "'")
    text = re.sub(r"[*_#`]+", " ", text)
    if not _DECIMAL_POINT.search(text):  # no decimal point anywhere: "1,5" is one number, 1.5
        text = _DECIMAL_COMMA.sub(r"\1.\2", text)
    return re.sub(r"[ \t]+", " ", text)


# A decimal comma (ISO 80000-1 allows either mark): one or two digits, a comma, one or two digits, no
# space and no further digit group ("1,5", "-0,75"; not "1,000", "1, 2", "1,2,3").
_DECIMAL_COMMA = re.compile(r"(?<![\d.,])([-+]?\d{1,2}),(\d{1,2})(?![\d,]|\.\d)")
_DECIMAL_POINT = re.compile(r"\d\.\d")


@functools.lru_cache(maxsize=64)
def _range_echo(policy: ScorePolicy) -> re.Pattern[str]:
    """Matches a restatement of the scale: "from -3 to 3", "(-3 to +3)", "[-1, 1]", "-1到1",
    "-3 (very negative) to 3 (very positive)", "out of 3", "/3"."""

    def num(x: float) -> str:
        forms = {f"{x:g}", f"{x:.1f}"}
        forms |= {"+" + f for f in list(forms) if not f.startswith("-")}
        return "(?:" + "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)) + ")"

    lo, hi = num(policy.lo), num(policy.hi)
    gloss = r"(?:\s*[(（][^()（）\d]{0,40}[)）])?"  # "(strongly negative)"
    sep = r"\s*(?:to|and|through|thru|-|~|～|到|至|,|，|…|\.\.\.?|/)\s*"
    defs = r"\s*(?:=|:|is|means|表示|代表|为)[^\d\n]{0,40}?"  # "-3 = very negative, 3 = very positive"
    return re.compile(
        rf"(?<![A-Za-z0-9_.]){lo}(?!\.?\d){gloss}{sep}{hi}(?!\.?\d){gloss}"
        rf"|(?<![A-Za-z0-9_.]){lo}(?!\.?\d){defs}(?:,|;|and|，|；)?\s*{hi}(?!\.?\d)\s*(?:=|:|is|means|表示|代表|为)"
        rf"|(?:out\s+of|/)\s*{hi}(?!\.?\d)"
    )


@dataclass(frozen=True)
class _Number:
    start: int
    end: int
    value: float


def _candidates(text: str) -> list[_Number]:
    """Numbers that can be a score: not list enumerators ("1. …", "2) …"), counts ("2 movies",
    "3个"), years, percentages, times or numbered things ("#2", "no. 3")."""
    out = []
    for m in _NUMBER.finditer(text):
        tok = m.group(0)
        try:
            value = float(tok)
        except ValueError:
            continue
        a, b = m.start(), m.end()
        after, before = text[b : b + 24], text[max(0, a - 8) : a]
        unsigned_int = tok.isdigit()
        if unsigned_int and re.match(r"(?:\s*[.、]\s+|[)）]\s*)[^\W\d]", after):
            lead = text[max(0, a - 40) : a] if a > 40 else "\n" + text[:a]
            if _ENUMERATOR.search(lead):
                continue  # a list enumerator: "1. …", "2) …", "(3) …" at a line or sentence start
        if re.match(r"\s*(?:%|％|percent|:\d|：\d)", after) or re.search(r"(?:#|no\.|№)\s*$", before):
            continue
        if unsigned_int and len(tok) == 4 and 1800 <= value <= 2100:
            continue  # a year
        if unsigned_int:
            word = re.match(r"\s*([a-z]+)", after)
            if word and word.group(1) not in _AFTER_SCORE:
                continue  # a count: "2 movies"
            if after[:1] and after[0] in _COUNT_CJK:
                continue  # a count: "2个", "3次"
        out.append(_Number(a, b, value))
    return out


def _after_cue(text: str, cue_end: int, cands: list[_Number]) -> _Number | None:
    """The first candidate in the cue's sentence, within _CUE_WINDOW characters of it."""
    for c in cands:
        if c.start < cue_end:
            continue
        gap = text[cue_end : c.start]
        if c.start - cue_end > _CUE_WINDOW or _SENTENCE_END.search(gap):
            return None
        return c
    return None


def _alternative(text: str, chosen: _Number, cands: list[_Number]) -> _Number | None:
    """A different number offered right after `chosen` as an alternative ("1 or 2", "1-2", "1到2")."""
    m = _ALTERNATIVE.match(text, chosen.end)
    if not m:
        return None
    for c in cands:
        if c.start >= m.end():
            return c if c.start == m.end() and c.value != chosen.value else None
    return None


def _closing(text: str, c: _Number) -> bool:
    """Whether `c` closes the answer: only punctuation, markdown or a parenthetical gloss after it,
    and not offered as the second of two alternatives."""
    tail = re.sub(r"[(（][^()（）]*[)）]", " ", text[c.end :])
    if re.search(r"[^\W_]", tail):
        return False
    return not re.search(
        r"(?:\bor|\bto|\band|/|~|或者|或|到|至|和|(?<=\d)\s*-)\s*$", text[max(0, c.start - 12) : c.start]
    )


def _pick_number(text: str, cands: list[_Number], policy: ScorePolicy) -> tuple[_Number, str] | Parsed | None:
    """The policy's choice among candidates: last final cue, last score cue, the single value, the
    closing number — or an `ambiguous` refusal."""
    for cue in reversed(list(_SCORE_FINAL_CUE.finditer(text))):
        hit = _after_cue(text, cue.end(), cands)
        if hit is not None:
            return hit, f"number after final cue {cue.group(0)!r}"
    if cands and _LEADING_OK.match(text, cands[0].end) and not text[: cands[0].start].strip(" \t\n\"'“”:"):
        return cands[0], "leading number"  # "-1.5\n\nThe tone is negative, around -1 to -2": the format asked for
    for cue in reversed(list(_SCORE_ANSWER_CUE.finditer(text))):
        hit = _after_cue(text, cue.end(), cands)
        if hit is not None:
            return hit, f"number after score cue {cue.group(0)!r}"
    pool = [c for c in cands if policy.out_of_range == "clip" or policy.inside(c.value)]
    if not pool:
        return None
    if len({c.value for c in pool}) == 1:
        return pool[-1], "the only number" if len(pool) == 1 else "the only value (repeated)"
    if pool[-1] is cands[-1] and _closing(text, pool[-1]):
        return pool[-1], CLOSING_NUMBER
    shown = ", ".join(f"{c.value:g}" for c in pool[:5])
    return Parsed(None, False, f"several numbers and no cue to choose: {shown}", "ambiguous")


def _numbers(text: str) -> list[float]:
    out = []
    for m in _NUMBER.finditer(text):
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


@functools.lru_cache(maxsize=64)
def _word_pattern(words: tuple[tuple[str, float], ...]) -> re.Pattern[str]:
    """Matches any of the policy's sentiment words, longest first (compiled once per policy)."""
    alts = "|".join(re.escape(w) for w, _ in sorted(words, key=lambda wv: (-len(wv[0]), wv[0])))
    return re.compile(rf"(?<![a-z0-9])(?:{alts})(?![a-z0-9])")


def _from_words(folded: str, policy: ScorePolicy) -> float | None:
    if not policy.words:
        return None
    table = dict(policy.words)
    spans = scopes(folded)
    for m in _word_pattern(policy.words).finditer(folded):
        if negated(spans, m.start()):
            continue
        return policy.word_value(table[m.group(0)])
    return None


def _out_of_range(x: float, policy: ScorePolicy) -> Parsed:
    return Parsed(None, False, f"number {x:g} out of range [{policy.lo:g}, {policy.hi:g}]", "out_of_range")


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
            if math.isfinite(float(value)):
                return _out_of_range(float(value), policy)
        elif isinstance(value, str):
            got = _first_accepted(_numbers(score_clean(value)), policy)
            if got is not None:
                return Parsed(got, True, "json string")
            if policy.allow_words:
                got = _from_words(fold(value), policy)
                if got is not None:
                    return Parsed(got, True, "json word")
    clean = _range_echo(policy).sub(" ", score_clean(body))
    clean = re.sub(r"[(（\[]\s*[)）\]]", " ", clean)  # what an echo left behind: "rating ( ): 1.5"
    cands = _candidates(clean)
    spans = number_scopes(clean)
    ruled_out = [c for c in cands if number_negated(clean, c.start, spans)]
    if ruled_out:  # "not 2, it's 1", "不是0.8而是0.6": a negated number is never the score
        cands = [c for c in cands if c not in ruled_out]
        if not cands:
            shown = ", ".join(f"{c.value:g}" for c in ruled_out[:5])
            return Parsed(None, False, f"only negated numbers: {shown}", "ambiguous")
    picked = _pick_number(clean, cands, policy)
    if isinstance(picked, Parsed):
        return picked
    if picked is not None:
        number, how = picked
        alt = _alternative(clean, number, cands)
        if alt is not None:
            return Parsed(None, False, f"{number.value:g} and {alt.value:g} offered as alternatives", "ambiguous")
        got = policy.accept(number.value)
        if got is None:
            return _out_of_range(number.value, policy)
        return Parsed(got, True, how)
    if policy.allow_words:
        got = _from_words(fold(body), policy)
        if got is not None:
            return Parsed(got, True, "sentiment word")
    if cands:
        shown = ", ".join(f"{c.value:g}" for c in cands[:5])
        return Parsed(None, False, f"number(s) out of range [{policy.lo:g}, {policy.hi:g}]: {shown}", "out_of_range")
    if _refusal(body):
        return Parsed(None, False, "refusal", "refused")
    return Parsed(None, False, "no number found", "no_label")


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
        return _unanswered(truncated, bool(_as_text(text).strip()))
    if _refusal(body, refusal_max_chars):
        return Parsed(None, False, "refusal", "refused")
    if json_object:
        obj = find_json(body)
        if obj is None:
            return Parsed(None, False, "no JSON object", "no_label")
        return Parsed(json.dumps(obj, ensure_ascii=False), True, "json object")
    return Parsed(body, True, "text")
