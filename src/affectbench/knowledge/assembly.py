"""Generative knowledge prompting (GKP): what reached the prompt, label-leak checks, quality, the source table.

Knowledge is stored as the predictions of runs of kind `knowledge` (the `raw` text per sample).
This module assembles it into prompts, judges it and compares eval runs that used it:

- `gather_knowledge` — the knowledge block of every sample of a run: each referenced source gets
  a fair share of the prompt's knowledge budget (max-min: a short source leaves its unused share to
  the others), is cut at a sentence end when longer, marked `TRIM_MARKER` where cut, and labelled
  with its writer when there are several. Empty texts, refusals and failed samples are left out.
  Per sample it records which sources were present, their characters in the prompt, whether they
  were trimmed, and the modalities the knowledge was made from (`SampleKnowledge.facts`, stored in
  each eval prediction's meta under "knowledge"). `coverage_summary` turns those into the run's
  per-source coverage; `check_coverage` is the gate a fine-tune on knowledge prompts calls.
- Leakage. A knowledge text *states the answer* when it names the gold answer — the label, one of
  its synonyms declared by the dataset's answer template (`prompts.parsing.LabelMatcher`), or for
  sentiment the gold polarity word — outside a clause that names an evidence cue; it *names an
  evidence cue* when the mention sits in a clause about the face, voice, words or a lexicon
  ("face: happy 0.71", "words: positive (vader +0.62)"), or when a lexicon polarity score has the
  gold sign. `leak_kind` tells the two apart; only answer-stating counts as a leak (`leaks`,
  `leak_rate`, `source_table(exclude_leaked=True)`), cue-naming is reported as `cue_rate`.
- Leak policies (`RunSpec.knowledge_policy`): `keep`; `mask` (`mask_labels`) blanks, in every
  source and for every label — not only the gold one, so the mask itself reveals nothing — each
  label name, each synonym the answer template declares for it, on sentiment tasks each polarity
  word and synonym and the number of each lexicon polarity score; `drop` leaves out a source's
  text for the samples where it states the gold answer (it reads the gold label: an ablation, not
  a deployable setting).
- `knowledge_quality` — the metrics stored with a knowledge run: length, empty and refusal rates,
  answer-stating and cue-naming rates. Each sample's prediction meta gets `leak` and `leak_kind`.
- `source_table` — "zero-shot vs each knowledge source": each eval entry of an experiment is
  compared with the baseline entry's run that matches it in everything but knowledge and
  adapter, via `affectbench.analysis.compare_runs` (paired bootstrap intervals).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import AffectbenchError
from .specs import RunSpec
from .store import Prediction, Store
from .types import DatasetInfo, TaskType

MASK = "[…]"
POLARITY_WORDS = ("positive", "negative", "neutral")
TRIM_MARKER = "[… cut at a sentence end to this source's share of the knowledge space]"
MIN_FINETUNE_COVERAGE = 0.95  # share of training samples every knowledge source must reach
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
_SCORE = re.compile(
    r"(?P<name>vader|compound|polarity|valence|sentiment\s+score)\s*[:=]?\s*(?P<x>[+-]?\d+(?:\.\d+)?)", re.I
)
_HOWNET = re.compile(r"hownet\s+pos\s*(?P<pos>\d+(?:\.\d+)?)\s*,?\s*neg\s*(?P<neg>\d+(?:\.\d+)?)", re.I)


# ------------------------------------------------------------------------------------ leakage


def _polarity(x: float, neutral_band: float = 0.0) -> str:
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
    from .prompts import default_prompt_name, load_template
    from .prompts.parsing import LabelMatcher
    from .prompts.template import TEMPLATES_DIR

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
            return _polarity(float(target))
        except (TypeError, ValueError):
            return None
    from .prompts.parsing import fold

    t = fold(str(target))
    return next((lab for lab in info.labels if fold(lab) == t), None)


def _score_polarities(text: str) -> list[str]:
    """The polarity of every lexicon score in `text` (VADER's ±0.05 neutral band; HowNet pos − neg)."""
    out = []
    for m in _SCORE.finditer(text):
        x = float(m.group("x"))
        out.append(_polarity(x, 0.05 if m.group("name").lower() in ("vader", "compound") else 0.0))
    for m in _HOWNET.finditer(text):
        out.append(_polarity(float(m.group("pos")) - float(m.group("neg"))))
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
    from .prompts.parsing import fold

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
    if kind is None and _is_sentiment(info) and gold in _score_polarities(text):
        kind = "cue"
    return kind


def _is_sentiment(info: DatasetInfo) -> bool:
    return info.task is TaskType.REGRESSION or info.task_name.lower() == "sentiment"


def leaks(text: str | None, target: Any, info: DatasetInfo) -> bool:
    """True when `text` states the gold answer (see `leak_kind`); naming it as an evidence cue is not a leak."""
    return leak_kind(text, target, info) == "answer"


def label_vocabulary(info: DatasetInfo) -> tuple[str, ...]:
    """Every folded word form that names an answer of this dataset: labels and their declared synonyms,
    plus the polarity words and their synonyms on sentiment tasks."""
    words = set(answer_matcher(info).forms)
    if _is_sentiment(info) and info.task is not TaskType.REGRESSION:
        words |= set(answer_matcher(_polarity_info(info)).forms)
    return tuple(sorted(words))


def _polarity_info(info: DatasetInfo) -> DatasetInfo:
    return DatasetInfo(info.name, TaskType.REGRESSION, score_range=(-1.0, 1.0), task_name="sentiment")


@functools.lru_cache(maxsize=64)
def _mask_pattern(words: tuple[str, ...]) -> re.Pattern[str] | None:
    if not words:
        return None
    alts = "|".join(
        r"[\s_\-]+".join(re.escape(part) for part in w.split(" "))
        for w in sorted(set(words), key=lambda w: (-len(w), w))
    )
    return re.compile(rf"(?<![0-9a-z])(?:{alts})(?![0-9a-z])", re.I)


def mask_labels(text: str, info: DatasetInfo, mask: str = MASK) -> str:
    """Blank every answer word of the dataset in `text`, label-blind (see the module doc for the guarantee).

    Blanks each label name and declared synonym (any case; `_`, `-` or spaces between words) of every
    label, and on sentiment tasks each polarity word, polarity synonym and the number of each lexicon
    polarity score ("vader +0.62" -> "vader […]"). Paraphrases outside those lists are kept.
    """
    out = text
    if _is_sentiment(info):  # scores first: their names ("pos", "neg") are polarity synonyms too
        out = _SCORE.sub(lambda m: m.group(0)[: m.start("x") - m.start()] + mask, out)
        out = _HOWNET.sub(lambda m: "HowNet " + mask, out)
    pattern = _mask_pattern(label_vocabulary(info))
    return pattern.sub(mask, out) if pattern else out


def apply_leak_policy(
    texts: Mapping[str, str], targets: Mapping[str, Any], info: DatasetInfo, policy: str = "keep"
) -> dict[str, str]:
    """Knowledge texts of one source under a leak policy: keep, mask answer words everywhere, or drop
    the texts that state the gold answer (raises ValueError for another policy)."""
    if policy == "keep":
        return dict(texts)
    if policy == "mask":
        return {sid: mask_labels(t, info) for sid, t in texts.items()}
    if policy == "drop":
        return {sid: t for sid, t in texts.items() if not leaks(t, targets.get(sid), info)}
    raise ValueError(f"knowledge leak policy must be keep, mask or drop; got {policy!r}")


def is_refusal(text: str) -> bool:
    """A short apology or refusal instead of a description."""
    return bool(text.strip()) and len(text) < 300 and bool(_REFUSAL.search(text))


# ---------------------------------------------------------------------------- what reached the prompt


@dataclass
class SourcePiece:
    """One knowledge source's part in one sample's prompt.

    `status`: "ok" (in the prompt), "missing" (no stored text for the sample), "error" (the
    writer failed on it), "empty", "refusal" or "dropped" (the drop policy: it stated the answer).
    `chars` counts the characters that reached the prompt (0 unless ok), `raw_chars` the stored text's.
    """

    source: str
    status: str
    chars: int = 0
    raw_chars: int = 0
    trimmed: bool = False
    modalities: tuple[str, ...] = ()


@dataclass
class SampleKnowledge:
    """The knowledge block of one sample (None when no source reached it) and how it was made."""

    text: str | None
    sources: list[SourcePiece] = field(default_factory=list)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities that reached the prompt through knowledge (union over the sources present)."""
        got = {m for p in self.sources if p.status == "ok" for m in p.modalities}
        return tuple(m for m in ("T", "A", "V") if m in got)

    def facts(self) -> dict[str, Any]:
        """Plain data for a prediction's meta["knowledge"]."""
        return {
            "modalities": list(self.modalities),
            "chars": len(self.text or ""),
            "sources": {
                p.source: {"status": p.status, "chars": p.chars, "raw_chars": p.raw_chars, "trimmed": p.trimmed}
                for p in self.sources
            },
        }


def source_label(store: Store, run_id: str) -> str:
    """How a knowledge source is named in prompts and reports: its writer and prompt, e.g. "experts/describe"."""
    spec = store.run(run_id).run_spec
    who = spec.model.backend + (f":{spec.model.name}" if spec.model.name else "")
    return f"{who}/{spec.prompt}"


def fair_shares(lengths: Sequence[int], budget: int) -> list[int]:
    """Max-min fair split of `budget` characters over sources of `lengths`: each gets at most its length,
    no source gets less than another unless it needs less (water-filling)."""
    shares = [0] * len(lengths)
    left, todo = budget, sorted(range(len(lengths)), key=lambda i: lengths[i])
    while todo:
        each = left // len(todo)
        i = todo[0]
        if lengths[i] <= each:
            shares[i] = lengths[i]
            left -= lengths[i]
            todo.pop(0)
        else:
            for j in todo:
                shares[j] = each
            break
    return shares


def assemble(
    pieces: Sequence[tuple[str, str]], budget: int, labels: bool | None = None
) -> tuple[str, list[tuple[int, bool]]]:
    """Join (label, text) pieces into one knowledge block of at most `budget` characters.

    Each piece gets its fair share (`fair_shares`) and is cut at a sentence end with `TRIM_MARKER`
    when longer. With several pieces (or `labels=True`) each starts on its own line as
    "[source i/n: label] text". Returns the block and, per piece, (characters it holds, whether it was cut).
    """
    from .prompts import trim_knowledge

    labels = len(pieces) > 1 if labels is None else labels
    n = len(pieces)
    heads = [f"[source {i}/{n}: {lab}] " if labels else "" for i, (lab, _) in enumerate(pieces, 1)]
    overhead = sum(len(h) for h in heads) + max(0, len(pieces) - 1)  # heads and newlines
    texts = [t.strip() for _, t in pieces]
    shares = fair_shares([len(t) for t in texts], max(0, budget - overhead))
    out, stats = [], []
    for head, text, share in zip(heads, texts, shares, strict=True):
        cut = trim_knowledge(text, share, TRIM_MARKER) if len(text) > share else text
        out.append(head + cut)
        stats.append((len(cut), len(text) > share))
    return "\n".join(out), stats


def gather_knowledge(spec: RunSpec, store: Store, info: DatasetInfo, budget: int = 1500) -> dict[str, SampleKnowledge]:
    """The knowledge block of every sample any of `spec.knowledge` covers, under `spec.knowledge_policy`.

    `budget` is the prompt's knowledge budget in characters (`TemplatePrompt.knowledge_budget`).
    Samples absent here get `missing_knowledge(spec, store)`. Raises AffectbenchError when a
    referenced knowledge run is not in the store.
    """
    per_source: list[tuple[str, dict[str, Prediction]]] = []
    for kid in spec.knowledge:
        if not store.has_run(kid):
            raise AffectbenchError(f"knowledge run {kid} is not in {store.path}; run it first")
        per_source.append((kid, {p.sample_id: p for p in store.predictions(kid)}))
    labels = {kid: source_label(store, kid) for kid, _ in per_source}
    sids = list(dict.fromkeys(sid for _, preds in per_source for sid in preds))
    out: dict[str, SampleKnowledge] = {}
    for sid in sids:
        pieces: list[SourcePiece] = []
        usable: list[tuple[str, str]] = []
        for kid, preds in per_source:
            p = preds.get(sid)
            piece, text = _piece(kid, p, spec.knowledge_policy, info)
            pieces.append(piece)
            if text is not None:
                usable.append((labels[kid], text))
        block, stats = assemble(usable, budget) if usable else (None, [])
        ok = [pc for pc in pieces if pc.status == "ok"]
        for pc, (chars, trimmed) in zip(ok, stats, strict=True):
            pc.chars, pc.trimmed = chars, trimmed
        out[sid] = SampleKnowledge(block, pieces)
    return out


def missing_knowledge(spec: RunSpec) -> SampleKnowledge:
    """The record of a sample none of the run's knowledge sources covers."""
    return SampleKnowledge(None, [SourcePiece(kid, "missing") for kid in spec.knowledge])


def _piece(kid: str, p: Prediction | None, policy: str, info: DatasetInfo) -> tuple[SourcePiece, str | None]:
    if p is None:
        return SourcePiece(kid, "missing"), None
    if p.error is not None:
        return SourcePiece(kid, "error"), None
    raw = (p.raw or "").strip()
    mods = tuple(p.modalities)
    if not raw:
        return SourcePiece(kid, "empty", modalities=mods), None
    if is_refusal(raw):
        return SourcePiece(kid, "refusal", raw_chars=len(raw), modalities=mods), None
    if policy == "drop" and leaks(raw, p.target, info):
        return SourcePiece(kid, "dropped", raw_chars=len(raw), modalities=mods), None
    if policy == "mask":
        raw = mask_labels(raw, info)
    return SourcePiece(kid, "ok", raw_chars=len(raw), modalities=mods), raw


def knowledge_texts(spec: RunSpec, store: Store, info: DatasetInfo, budget: int = 1500) -> dict[str, str]:
    """Per sample, the knowledge block that `gather_knowledge` builds (samples without knowledge left out)."""
    return {sid: k.text for sid, k in gather_knowledge(spec, store, info, budget).items() if k.text}


def coverage_summary(facts: Sequence[Mapping[str, Any]], sources: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per source: `coverage` (share of samples whose prompt got its text), `trimmed_rate` (share of those
    cut), `mean_chars` (characters in the prompt, over covered samples), and the share of samples whose
    text was `missing`, `empty`, a `refusal`, `dropped` or an `error`. `facts` are meta["knowledge"] dicts."""
    n = len(facts)
    out: dict[str, dict[str, float]] = {}
    for src in sources:
        rows = [f.get("sources", {}).get(src, {"status": "missing"}) for f in facts]
        ok = [r for r in rows if r.get("status") == "ok"]
        d: dict[str, float] = {
            "coverage": round(len(ok) / n, 4) if n else 0.0,
            "trimmed_rate": round(sum(bool(r.get("trimmed")) for r in ok) / len(ok), 4) if ok else 0.0,
            "mean_chars": round(sum(r.get("chars", 0) for r in ok) / len(ok), 1) if ok else 0.0,
        }
        for status in ("missing", "empty", "refusal", "dropped", "error"):
            d[f"{status}_rate"] = round(sum(r.get("status") == status for r in rows) / n, 4) if n else 0.0
        out[src] = d
    return out


def check_coverage(
    knowledge: Mapping[str, SampleKnowledge],
    sample_ids: Sequence[str],
    sources: Sequence[str],
    threshold: float = MIN_FINETUNE_COVERAGE,
    what: str = "fine-tune",
) -> dict[str, dict[str, float]]:
    """Refuse (AffectbenchError) when any source reaches the prompts of fewer than `threshold` of
    `sample_ids`; returns the coverage summary otherwise. Used before training on knowledge prompts."""
    facts = [(knowledge.get(sid) or SampleKnowledge(None, [])).facts() for sid in sample_ids]
    summary = coverage_summary(facts, sources)
    low = {s: d["coverage"] for s, d in summary.items() if d["coverage"] < threshold}
    if low:
        detail = ", ".join(f"{s}: {c:.0%}" for s, c in low.items())
        raise AffectbenchError(
            f"{what}: knowledge reaches too few of its {len(sample_ids)} samples ({detail}; at least "
            f"{threshold:.0%} needed per source). Run the knowledge runs on this split, or check their empty "
            "and refusal rates"
        )
    return summary


# ------------------------------------------------------------------------------------ quality


def knowledge_quality(store: Store, run_id: str, info: DatasetInfo) -> dict[str, Any]:
    """Quality signals of a knowledge run; also flags each sample's leak in its prediction meta.

    Metrics: `mean_chars`, `mean_words`, `empty_rate`, `refusal_rate`, `truncated_rate` (the
    writer hit max_new_tokens: finish_reason "length"), `leak_rate` (share of
    answered samples whose knowledge states the gold answer), `cue_rate` (share naming the gold
    answer only as an evidence cue), `_n`, `_errors`, `_leaked`. Meta per sample: `leak` (bool,
    states the answer) and `leak_kind` ("answer", "cue" or None; see `leak_kind`).
    """
    preds = store.predictions(run_id)
    answered = [p for p in preds if p.error is None]
    n = len(answered)
    texts = [p.raw or "" for p in answered]
    empty = sum(1 for t in texts if not t.strip())
    refusals = sum(1 for t in texts if is_refusal(t))
    cut = sum(1 for p in answered if (getattr(p, "finish_reason", None) or p.meta.get("finish_reason")) == "length")
    metrics: dict[str, Any] = {
        "_n": len(preds),
        "_errors": len(preds) - n,
        "mean_chars": round(sum(len(t) for t in texts) / n, 1) if n else 0.0,
        "mean_words": round(sum(len(t.split()) for t in texts) / n, 1) if n else 0.0,
        "empty_rate": round(empty / n, 4) if n else 0.0,
        "refusal_rate": round(refusals / n, 4) if n else 0.0,
        "truncated_rate": round(cut / n, 4) if n else 0.0,  # generation stopped at max_new_tokens
    }
    updated: list[Prediction] = []
    n_leak = n_cue = 0
    for p in answered:
        kind = leak_kind(p.raw, p.target, info)
        n_leak += kind == "answer"
        n_cue += kind == "cue"
        if p.meta.get("leak") != (kind == "answer") or p.meta.get("leak_kind", "-") != kind:
            p.meta = dict(p.meta, leak=kind == "answer", leak_kind=kind)
            updated.append(p)
    if updated:
        store.add_predictions(run_id, updated)
    metrics["leak_rate"] = round(n_leak / n, 4) if n else 0.0
    metrics["cue_rate"] = round(n_cue / n, 4) if n else 0.0
    metrics["_leaked"] = n_leak
    return metrics


def leaked_samples(store: Store, knowledge_run_ids: Sequence[str], info: DatasetInfo) -> set[str]:
    """Samples whose knowledge (from any of the runs) states the gold answer."""
    out: set[str] = set()
    for kid in knowledge_run_ids:
        for p in store.predictions(kid):
            if p.error is None and leaks(p.raw, p.target, info):
                out.add(p.sample_id)
    return out


def knowledge_metrics(store: Store, run_id: str) -> dict[str, Any]:
    """The summary of what reached an eval run's prompts, from its predictions' meta["knowledge"]:
    `_knowledge` (per knowledge run id: `coverage_summary` plus its `label`) and
    `_knowledge_modalities` (modalities that reached some prompt through knowledge). {} without knowledge."""
    kids = store.run(run_id).run_spec.knowledge
    if not kids:
        return {}
    facts = [p.meta.get("knowledge") or {} for p in store.predictions(run_id)]
    summary: dict[str, Any] = dict(coverage_summary(facts, kids))
    for kid in kids:
        summary[kid] = dict(summary[kid], label=source_label(store, kid) if store.has_run(kid) else "?")
    mods = {m for f in facts for m in f.get("modalities", ())}
    return {"_knowledge": summary, "_knowledge_modalities": [m for m in ("T", "A", "V") if m in mods]}


# ----------------------------------------------------------------------------- coverage in reports

COVERAGE_HEADER = (
    "dataset",
    "run",
    "modalities",
    "source",
    "coverage",
    "trimmed",
    "chars",
    "empty",
    "refusal",
    "states answer",
    "names cue",
    "Δ",
    "CI low",
    "CI high",
)


def coverage_rows(store: Store, runs: Sequence[Any], gains: Sequence[Any] = ()) -> list[list[Any]]:
    """One row per (eval run with knowledge, source): what reached the prompts next to the gain it fed.

    Columns (`COVERAGE_HEADER`): the run's modalities directly + through knowledge, the source's
    coverage and trimmed share in this run's prompts and mean characters, the knowledge run's own
    empty, refusal, answer-stating and cue-naming rates, and the run's gain over zero-shot (Δ and
    its 95% CI; blank when the report has no matching baseline). Runs scored before coverage was
    recorded show blanks for coverage.
    """
    from .analysis.runs import label

    by_run = {g.run_id: g for g in gains}
    rows: list[list[Any]] = []
    for r in runs:
        spec = r.run_spec
        if not spec.knowledge:
            continue
        m = r.metrics or {}
        cov = m.get("_knowledge") or {}
        via = "".join(m.get("_knowledge_modalities") or [])
        mods = spec.media.modalities + (f" + {via} via knowledge" if via else "")
        g = by_run.get(r.id)
        for kid in spec.knowledge:
            c = cov.get(kid) or {}
            q = store.run(kid).metrics if store.has_run(kid) else {}
            q = q or {}
            rows.append(
                [
                    spec.dataset.name,
                    label(r, ("model", "setting")),
                    mods,
                    f"{c.get('label') or (source_label(store, kid) if store.has_run(kid) else '?')} ({kid})",
                    c.get("coverage"),
                    c.get("trimmed_rate"),
                    c.get("mean_chars"),
                    q.get("empty_rate"),
                    q.get("refusal_rate"),
                    q.get("leak_rate"),
                    q.get("cue_rate"),
                    g.delta if g else None,
                    g.lo if g else None,
                    g.hi if g else None,
                ]
            )
    return rows


def coverage_markdown(rows: Sequence[Sequence[Any]]) -> str:
    """`coverage_rows` as a markdown table (rates as percentages)."""

    def cell(j: int, v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float) and COVERAGE_HEADER[j] in (
            "coverage",
            "trimmed",
            "empty",
            "refusal",
            "states answer",
            "names cue",
        ):
            return f"{v:.0%}"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(COVERAGE_HEADER) + " |", "|" + "---|" * len(COVERAGE_HEADER)]
    lines += ["| " + " | ".join(cell(j, v) for j, v in enumerate(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- source table


def _matching_baseline(store: Store, run_id: str, baseline_ids: Sequence[str]) -> str | None:
    """The baseline run that differs from `run_id` only in knowledge (and its leak policy) and adapter."""
    from .analysis.runs import spec_without

    drop = ("knowledge", "knowledge_policy", "model.adapter")
    target = spec_without(store.run(run_id), *drop)
    for bid in baseline_ids:
        if store.has_run(bid) and spec_without(store.run(bid), *drop) == target:
            return bid
    return None


def source_table(
    store: Store,
    names: Mapping[str, Sequence[str]],
    baseline: str = "zeroshot",
    entries: Sequence[str] | None = None,
    n_boot: int = 1000,
    exclude_leaked: bool = False,
    by: Sequence[str] = ("model", "setting"),
):
    """Gain rows "baseline vs each entry" (e.g. zero-shot vs each knowledge source) with paired CIs.

    `names` maps experiment entry names to their run ids (`Plan.names`); every eval run of the
    listed `entries` (default: every eval entry but the baseline) is compared with the baseline
    run that matches it in everything but knowledge and adapter. Row labels get the entry name.
    With `exclude_leaked`, samples whose knowledge states the gold answer are left out of both runs.
    """
    from .analysis.gains import compare_runs
    from .analysis.runs import info_from_run

    if baseline not in names:
        raise AffectbenchError(f"no experiment entry named {baseline!r}; entries: {', '.join(names)}")
    base_ids = list(names[baseline])
    wanted = list(entries) if entries is not None else [n for n in names if n != baseline]
    rows = []
    for entry in wanted:
        if entry not in names:
            raise AffectbenchError(f"no experiment entry named {entry!r}; entries: {', '.join(names)}")
        for rid in names[entry]:
            if not store.has_run(rid) or store.run(rid).kind != "eval":
                continue
            bid = _matching_baseline(store, rid, base_ids)
            if bid is None:
                continue
            exclude: set[str] = set()
            if exclude_leaked:
                exclude = leaked_samples(store, store.run(rid).run_spec.knowledge, info_from_run(store.run(bid)))
            try:
                (row,) = compare_runs(store, bid, [rid], n_boot=n_boot, by=by, exclude=exclude)
            except AffectbenchError as e:
                if not exclude:
                    raise
                raise AffectbenchError(f"{e} (leaked knowledge is excluded)") from e
            row.label = f"{entry}: {row.label}" + (" (leaks excluded)" if exclude_leaked else "")
            rows.append(row)
    return rows


def source_markdown(rows, digits: int = 4) -> str:
    """The source table as markdown (see `affectbench.analysis.gains_markdown`)."""
    from .analysis.gains import gains_markdown

    return gains_markdown(rows, digits)

