"""Performance against model attributes and dataset properties across the benchmark matrix,
and stratified results (a metric within sample strata such as clip-duration buckets)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..engine.store import Store
from ..metrics import primary_metric
from .corpus import corpus_of
from .dataset_props import DatasetProperties
from .model_cards import ModelCard, card_for, load_cards
from .runs import (
    aligned,
    analysed_runs,
    finite,
    higher_is_better,
    info_from_run,
    label,
    metric_value,
)
from .stats import spearman_ci


@dataclass
class PerfRow:
    """One scored run joined with its model card's attributes and its dataset's properties.

    `score` is the metric oriented so that higher is better (MAE negated); `relative` is the
    score minus the mean score of all runs on the same corpus (`corpus`: `Corpus.key`; `dataset` is its
    short title), so it compares across datasets whose metrics differ in scale.
    """

    run_id: str
    dataset: str
    model: str
    metric: str
    value: float
    score: float
    relative: float
    attributes: dict[str, float | None]
    corpus: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Correlation:
    attribute: str
    target: str
    rho: float
    lo: float
    hi: float
    n: int
    undefined: float = 0.0  # share of bootstrap replicates where rho was undefined (a constant draw)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def performance_rows(
    store: Store,
    cards: Iterable[ModelCard] | None = None,
    props: Mapping[str, DatasetProperties] | None = None,
    metric: str | None = None,
) -> list[PerfRow]:
    """Every complete scored eval run as a row of (score, model attributes, dataset properties);
    partial runs are left out (`runs.analysed_runs`: count them with `excluded_note`).

    `metric` picks one stored metric for all runs (runs without it are left out); by default each
    dataset's primary metric is used. `props` is keyed by `Corpus.key` (or, for one corpus per
    adapter, by the adapter name).
    """
    cards = list(cards) if cards is not None else load_cards()
    rows = []
    for run in analysed_runs(store)[0]:
        name = metric or primary_metric(info_from_run(run))[0]
        v = metric_value(run, name)
        if not finite(v):
            continue
        card = card_for(run.run_spec.model, cards)
        attrs: dict[str, float | None] = dict(card.attributes()) if card else {}
        attrs["input_modalities"] = float(len(run.run_spec.media.modalities))
        attrs["knowledge"] = float(bool(run.run_spec.knowledge))
        attrs["finetuned"] = float(bool(run.run_spec.model.adapter))
        corpus = corpus_of(run)
        prop = (props or {}).get(corpus.key) or (props or {}).get(run.run_spec.dataset.name)
        if prop is not None:
            attrs.update(prop.numeric())
        score = v if higher_is_better(name) else -v
        model = label(run, ("model",), cards)
        rows.append(PerfRow(run.id, corpus.title, model, name, v, score, 0.0, attrs, corpus.key))
    by_ds: dict[str, list[PerfRow]] = {}
    for r in rows:
        by_ds.setdefault(r.corpus or r.dataset, []).append(r)
    for rs in by_ds.values():
        mean = sum(r.score for r in rs) / len(rs)
        for r in rs:
            r.relative = r.score - mean
    return rows


def correlations(
    rows: Sequence[PerfRow],
    attributes: Sequence[str] | None = None,
    target: str = "relative",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> list[Correlation]:
    """Spearman rho of `target` ("relative", "score" or "value") with each attribute, with bootstrap CIs.

    Attributes that are missing or constant over the rows are skipped (rho is undefined there).
    """
    names = attributes or sorted({k for r in rows for k in r.attributes})
    out = []
    for a in names:
        pairs = [(r.attributes.get(a), getattr(r, target)) for r in rows]
        pairs = [(x, y) for x, y in pairs if finite(x) and finite(y)]
        if len(pairs) < 3 or len({x for x, _ in pairs}) < 2 or len({y for _, y in pairs}) < 2:
            continue
        ci = spearman_ci([x for x, _ in pairs], [y for _, y in pairs], n_boot=n_boot, alpha=alpha, seed=seed)
        out.append(Correlation(a, target, ci.point, ci.lo, ci.hi, ci.n, ci.undefined))
    return out


@dataclass
class StratumRow:
    run_id: str
    label: str
    dataset: str
    stratum: str
    metric: str
    value: float
    lo: float
    hi: float
    n: int
    undefined: float = 0.0  # share of bootstrap replicates where the metric was undefined
    method: str = "percentile"  # or "clopper-pearson" for a proportion at the boundary

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def stratified(
    store: Store,
    run_ids: Sequence[str],
    strata: Mapping[str, str],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    by: Sequence[str] = ("model", "prompt"),
    cards: Iterable[ModelCard] | None = None,
) -> list[StratumRow]:
    """Each run's primary metric within each stratum (sample id -> stratum), with bootstrap CIs.

    Build `strata` with `dataset_props.duration_strata` or `agreement_strata`.
    """
    from .. import metrics

    cards = list(cards) if cards is not None else None
    out = []
    for rid in run_ids:
        run = store.run(rid)
        info = info_from_run(run)
        name, fn = primary_metric(info)
        al = aligned(store, [rid])
        buckets: dict[str, list[int]] = {}
        for i, sid in enumerate(al.sample_ids):
            if sid in strata:
                buckets.setdefault(strata[sid], []).append(i)
        for stratum in sorted(buckets):
            idx = buckets[stratum]
            p = [al.preds[rid][i] for i in idx]
            t = [al.targets[i] for i in idx]
            g = [al.groups[i] for i in idx]
            ci = metrics.bootstrap_ci(fn, p, t, groups=g if any(g) else None, n=n_boot, alpha=alpha, seed=seed)
            lab = label(run, by, cards)
            out.append(
                StratumRow(
                    rid,
                    lab,
                    info.corpus,
                    stratum,
                    name,
                    float(ci.point),
                    ci.lo,
                    ci.hi,
                    len(idx),
                    ci.undefined,
                    ci.method,
                )
            )
    return out
