"""Generative knowledge prompting (GKP): quality signals, label-leak checks and the source table.

Knowledge is stored as the predictions of runs of kind `knowledge` (the `raw` text per sample).
This module judges that text and compares eval runs that used it:

- `knowledge_quality` — the metrics stored with a knowledge run: mean length, empty and refusal
  rates, and the label-leak rate. Each sample's prediction meta gets `leak: true|false`.
- A *leak* is knowledge that names the gold answer verbatim: the gold label word of a
  classification dataset ("joy" when the target is joy), or the gold polarity word for a
  sentiment score ("positive" for a target > 0, "negative" < 0, "neutral" = 0). Any gain that
  such knowledge brings may come from the writer having seen the answer (e.g. in a transcript
  or a file name) rather than from the clip, so it is flagged and can be taken out:
  * `source_table(..., exclude_leaked=True)` compares runs only on samples whose knowledge did
    not leak (paired bootstrap on the remaining samples);
  * `mask_labels(text, info)` blanks every label / polarity word — all of them, not only the
    gold one, so the mask itself reveals nothing — and `apply_leak_policy` applies "mask" or
    "drop" to merged knowledge texts (the runner can call it when a run asks for it).
- `source_table` — "zero-shot vs each knowledge source": each eval entry of an experiment is
  compared with the baseline entry's run that matches it in everything but knowledge and
  adapter, via `affectbench.analysis.compare_runs` (paired bootstrap intervals).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import AffectbenchError
from .specs import RunSpec
from .store import Prediction, Store
from .types import DatasetInfo, TaskType

MASK = "[…]"
POLARITY_WORDS = ("positive", "negative", "neutral")
_REFUSAL = re.compile(
    r"^\s*(?:i\s*(?:'m| am)\s*(?:sorry|unable|not able)|i\s*(?:cannot|can't|can not|won't)|"
    r"sorry\b|as an ai\b|i do not have|i don't have)",
    re.I,
)


# ------------------------------------------------------------------------------------ leakage


def _word_re(words: Sequence[str]) -> re.Pattern[str] | None:
    words = [w for w in words if w and w.strip()]
    if not words:
        return None
    alts = "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))
    return re.compile(rf"(?<![0-9a-z])(?:{alts})(?![0-9a-z])", re.I)


def _norm_label(s: str) -> str:
    return re.sub(r"[_\-\s]+", " ", s.strip().lower())


def gold_words(target: Any, info: DatasetInfo) -> tuple[str, ...]:
    """The words that would give the gold answer away: the label name, or the polarity of a score."""
    if target is None:
        return ()
    if info.task is TaskType.REGRESSION:
        try:
            x = float(target)
        except (TypeError, ValueError):
            return ()
        return ("positive",) if x > 0 else ("negative",) if x < 0 else ("neutral",)
    label = _norm_label(str(target))
    forms = {label, label.replace(" ", "_"), label.replace(" ", "-")}
    return tuple(sorted(forms))


def leaks(text: str | None, target: Any, info: DatasetInfo) -> bool:
    """True when `text` names the gold label (or the gold polarity of a score) as a whole word."""
    if not text:
        return False
    pattern = _word_re(gold_words(target, info))
    return bool(pattern and pattern.search(text))


def label_vocabulary(info: DatasetInfo) -> tuple[str, ...]:
    """Every word that names an answer of this dataset: label names, and polarity words for sentiment."""
    words: set[str] = set()
    for label in info.labels:
        n = _norm_label(label)
        words.update({n, n.replace(" ", "_"), n.replace(" ", "-")})
    if info.task is TaskType.REGRESSION or info.task_name.lower() == "sentiment":
        words.update(POLARITY_WORDS)
    return tuple(sorted(words))


def mask_labels(text: str, info: DatasetInfo, mask: str = MASK) -> str:
    """Blank every answer word of the dataset in `text` (label-blind, so the mask leaks nothing)."""
    pattern = _word_re(label_vocabulary(info))
    return pattern.sub(mask, text) if pattern else text


def apply_leak_policy(
    texts: Mapping[str, str], targets: Mapping[str, Any], info: DatasetInfo, policy: str = "keep"
) -> dict[str, str]:
    """Knowledge texts under a leak policy: keep them, mask answer words everywhere, or drop leaking ones."""
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


# ------------------------------------------------------------------------------------ quality


def knowledge_quality(store: Store, run_id: str, info: DatasetInfo) -> dict[str, Any]:
    """Quality signals of a knowledge run; also flags each sample's leak in its prediction meta.

    Metrics: `mean_chars`, `mean_words`, `empty_rate`, `refusal_rate`, `leak_rate` (share of
    answered samples whose knowledge names the gold answer), `_n`, `_errors`, `_leaked`.
    """
    preds = store.predictions(run_id)
    answered = [p for p in preds if p.error is None]
    n = len(answered)
    texts = [p.raw or "" for p in answered]
    empty = sum(1 for t in texts if not t.strip())
    refusals = sum(1 for t in texts if is_refusal(t))
    metrics: dict[str, Any] = {
        "_n": len(preds),
        "_errors": len(preds) - n,
        "mean_chars": round(sum(len(t) for t in texts) / n, 1) if n else 0.0,
        "mean_words": round(sum(len(t.split()) for t in texts) / n, 1) if n else 0.0,
        "empty_rate": round(empty / n, 4) if n else 0.0,
        "refusal_rate": round(refusals / n, 4) if n else 0.0,
    }
    updated: list[Prediction] = []
    n_leak = 0
    for p in answered:
        flag = leaks(p.raw, p.target, info)
        n_leak += flag
        if p.meta.get("leak") != flag:
            p.meta = dict(p.meta, leak=flag)
            updated.append(p)
    if updated:
        store.add_predictions(run_id, updated)
    metrics["leak_rate"] = round(n_leak / n, 4) if n else 0.0
    metrics["_leaked"] = n_leak
    return metrics


def leaked_samples(store: Store, knowledge_run_ids: Sequence[str], info: DatasetInfo) -> set[str]:
    """Samples whose knowledge (from any of the runs) names the gold answer."""
    out: set[str] = set()
    for kid in knowledge_run_ids:
        for p in store.predictions(kid):
            if p.error is None and leaks(p.raw, p.target, info):
                out.add(p.sample_id)
    return out


# ------------------------------------------------------------------------------- source table


def _matching_baseline(store: Store, run_id: str, baseline_ids: Sequence[str]) -> str | None:
    """The baseline run that differs from `run_id` only in knowledge and adapter."""
    from .analysis.runs import spec_without

    target = spec_without(store.run(run_id), "knowledge", "model.adapter")
    for bid in baseline_ids:
        if store.has_run(bid) and spec_without(store.run(bid), "knowledge", "model.adapter") == target:
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
    With `exclude_leaked`, samples whose knowledge names the gold answer are left out of both runs.
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


def knowledge_texts(spec: RunSpec, store: Store, info: DatasetInfo) -> dict[str, str]:
    """Merge the knowledge of every referenced knowledge run, per sample, in the given order,
    under the run's leak policy."""
    merged: dict[str, list[str]] = {}
    for kid in spec.knowledge:
        if not store.has_run(kid):
            raise AffectbenchError(f"knowledge run {kid} is not in {store.path}; run it first")
        for sid, text in store.knowledge(kid).items():
            if text.strip():
                merged.setdefault(sid, []).append(text.strip())
    texts = {sid: "\n".join(parts) for sid, parts in merged.items()}
    if spec.knowledge_policy == "mask":
        texts = {sid: mask_labels(t, info) for sid, t in texts.items()}
    return texts
