"""Error analysis: confusion matrices, the hardest samples (most runs wrong), parse failures by model.

Regression datasets are compared on polarity classes (negative / neutral / positive), so
"wrong" there means the predicted sentiment has the other sign.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.types import DatasetInfo, TaskType
from ..engine.store import Store
from .corpus import column_titles, corpus_of
from .dataset_props import sign_class
from .model_cards import ModelCard
from .runs import analysed_runs, info_from_run, label

UNPARSED = "(unparsed)"
POLARITIES = ("negative", "neutral", "positive")


def as_class(info: DatasetInfo, value: Any) -> str | None:
    """A prediction or target as a class name (polarity for regression); None when unparseable."""
    if value is None:
        return None
    if info.task is TaskType.REGRESSION:
        try:
            return POLARITIES[sign_class(float(value)) + 1]
        except (TypeError, ValueError):
            return None
    return str(value)


def class_labels(info: DatasetInfo) -> tuple[str, ...]:
    return info.labels if info.task is TaskType.CLASSIFICATION else POLARITIES


@dataclass
class Confusion:
    """Counts with true classes as rows and predicted classes as columns (last column: unparsed)."""

    run_id: str
    label: str
    dataset: str
    rows: list[str]
    cols: list[str]
    counts: list[list[int]]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def confusion(store: Store, run_id: str, by: Sequence[str] = ("model", "prompt"), cards=None) -> Confusion:
    """A run's confusion matrix over its dataset's classes (polarities for regression)."""
    run = store.run(run_id)
    info = info_from_run(run)
    labs = list(class_labels(info))
    cols = labs + [UNPARSED]
    extra: list[str] = []
    counts: dict[tuple[str, str], int] = {}
    for p in store.predictions(run_id):
        if p.error is not None:
            continue
        t = as_class(info, p.target)
        if t is None:
            continue
        if t not in labs and t not in extra:
            extra.append(t)
        pred = as_class(info, p.value) if p.ok else None
        if pred is not None and pred not in cols:
            pred = UNPARSED  # an answer outside the label space is as good as unparsed
        key = (t, pred or UNPARSED)
        counts[key] = counts.get(key, 0) + 1
    rows = labs + extra
    matrix = [[counts.get((r, c), 0) for c in cols] for r in rows]
    return Confusion(run_id, label(run, by, cards), info.corpus, rows, cols, matrix)


@dataclass
class HardSample:
    dataset: str
    sample_id: str
    target: Any
    n_runs: int
    n_wrong: int
    wrong_rate: float
    answers: dict[str, Any] = field(default_factory=dict)  # run label -> parsed answer


def hardest_samples(
    store: Store, top: int = 20, by: Sequence[str] = ("model", "prompt"), cards: Iterable[ModelCard] | None = None
) -> list[HardSample]:
    """Samples most complete runs got wrong, per corpus (`corpus.corpus_of`; ties broken by the number
    of runs, then id); partial runs are left out."""
    cards = list(cards) if cards is not None else None
    tally: dict[tuple[str, str], HardSample] = {}
    runs = analysed_runs(store)[0]
    titles = column_titles(corpus_of(r) for r in runs)
    for run in runs:
        info = info_from_run(run)
        ckey = corpus_of(run).key
        lab = label(run, by, cards)
        for p in store.predictions(run.id):
            if p.error is not None or p.target is None:
                continue
            key = (ckey, p.sample_id)
            hs = tally.get(key)
            if hs is None:
                hs = tally[key] = HardSample(titles[ckey], p.sample_id, p.target, 0, 0, 0.0)
            right = p.ok and as_class(info, p.value) == as_class(info, p.target)
            hs.n_runs += 1
            hs.n_wrong += int(not right)
            hs.answers[lab] = p.value if p.ok else None
    for hs in tally.values():
        hs.wrong_rate = hs.n_wrong / hs.n_runs
    ranked = sorted(tally.values(), key=lambda h: (-h.wrong_rate, -h.n_runs, h.dataset, h.sample_id))
    return ranked[:top]


@dataclass
class ParseFailures:
    model: str
    dataset: str
    n: int
    failures: int
    rate: float
    reasons: dict[str, int] = field(default_factory=dict)  # unread reason (types.UNREAD_REASONS) -> count


def parse_failures(store: Store, cards: Iterable[ModelCard] | None = None) -> list[ParseFailures]:
    """Unparseable answers per model and corpus (column title), counted from the stored predictions of
    complete runs (partial runs are left out)."""
    cards = list(cards) if cards is not None else None
    acc: dict[tuple[str, str], list[int]] = {}
    why: dict[tuple[str, str], dict[str, int]] = {}
    runs = analysed_runs(store)[0]
    titles = column_titles(corpus_of(r) for r in runs)
    for run in runs:
        key = (label(run, ("model",), cards), titles[corpus_of(run).key])
        preds = [p for p in store.predictions(run.id) if p.error is None]
        a = acc.setdefault(key, [0, 0])
        a[0] += len(preds)
        a[1] += sum(not p.ok for p in preds)
        w = why.setdefault(key, {})
        for p in preds:
            if not p.ok:
                w[p.reason or "no_label"] = w.get(p.reason or "no_label", 0) + 1
    return [ParseFailures(m, d, n, f, f / n if n else 0.0, why[(m, d)]) for (m, d), (n, f) in sorted(acc.items())]
