"""Modality ablation: runs that differ only in `media.modalities` (T, A, V, TA, TV, AV, TAV).

A modality m's marginal contribution is the mean, over the subsets S without m for which both
S and S+m were run, of metric(S+m) − metric(S) — computed on the samples all those runs
answered, with a paired bootstrap interval that resamples those samples jointly.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.types import ALL_MODALITIES
from ..engine.store import RunRecord, Store
from ..metrics import primary_metric
from .corpus import group_key
from .model_cards import ModelCard, card_for
from .runs import aligned, analysed_runs, higher_is_better, info_from_run, label
from .stats import metric_replicates, percentile_interval


@dataclass
class MarginalRow:
    dataset: str
    model: str  # the run label without modalities
    modality: str
    metric: str
    contribution: float
    lo: float
    hi: float
    n: int  # shared samples
    pairs: list[str] = field(default_factory=list)  # e.g. ["T→TA", "V→AV"]
    higher_is_better: bool = True
    family: str = ""  # the model card's family ("" without a card)
    undefined: float = 0.0  # share of bootstrap replicates where the contribution was undefined

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AblationScore:
    """The metric of one modality setting (for ablation bars)."""

    dataset: str
    model: str
    modalities: str
    metric: str
    value: float
    run_id: str


def ablation_groups(runs: Iterable[RunRecord]) -> list[dict[str, RunRecord]]:
    """Runs grouped by corpus and everything but media.modalities; only groups with two or more settings."""
    groups: dict[str, dict[str, RunRecord]] = {}
    for r in runs:
        groups.setdefault(group_key(r, "media.modalities"), {})[r.run_spec.media.modalities] = r
    return [g for g in groups.values() if len(g) >= 2]


def _canon(mods: set[str]) -> str:
    return "".join(m for m in ALL_MODALITIES if m in mods)


def modality_ablation(
    store: Store,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    by: tuple[str, ...] = ("model", "prompt"),
    cards: Iterable[ModelCard] | None = None,
) -> tuple[list[MarginalRow], list[AblationScore]]:
    """Marginal contribution of each modality per model and dataset, and each setting's metric."""
    cards = list(cards) if cards is not None else None
    rows: list[MarginalRow] = []
    scores: list[AblationScore] = []
    for group in ablation_groups(analysed_runs(store)[0]):  # partial runs measured other samples
        any_run = next(iter(group.values()))
        info = info_from_run(any_run)
        name, fn = primary_metric(info)
        facets = tuple(f for f in by if f != "modalities")
        model = label(any_run, facets, cards)
        card = card_for(any_run.run_spec.model, cards)
        family = (card.family or card.id) if card else ""
        for mods, run in sorted(group.items(), key=lambda kv: (len(kv[0]), kv[0])):
            v = (run.metrics or {}).get(name)
            if isinstance(v, int | float):
                scores.append(AblationScore(info.corpus, model, mods, name, float(v), run.id))
        for m in ALL_MODALITIES:
            pairs = []
            for mods in group:
                if m in mods:
                    continue
                plus = _canon(set(mods) | {m})
                if plus in group:
                    pairs.append((mods, plus))
            if not pairs:
                continue
            ids = sorted({group[s].id for pair in pairs for s in pair})
            al = aligned(store, ids)
            if not al.sample_ids:
                continue
            order = sorted({mods for pair in pairs for mods in pair})
            col = {mods: k for k, mods in enumerate(order)}
            groups = al.groups if any(al.groups) else None
            points, reps = metric_replicates(
                fn, [al.preds[group[mods].id] for mods in order], al.targets, groups, n_boot, seed
            )
            point = sum(points[col[plus]] - points[col[s]] for s, plus in pairs) / len(pairs)
            deltas = sum(reps[:, col[plus]] - reps[:, col[s]] for s, plus in pairs) / len(pairs)
            ci = percentile_interval(float(point), deltas, len(al.sample_ids), alpha)
            rows.append(
                MarginalRow(
                    dataset=info.corpus,
                    model=model,
                    modality=m,
                    metric=name,
                    contribution=ci.point,
                    lo=ci.lo,
                    hi=ci.hi,
                    n=len(al.sample_ids),
                    pairs=[f"{s}→{plus}" for s, plus in pairs],
                    higher_is_better=higher_is_better(name),
                    family=family,
                    undefined=ci.undefined,
                )
            )
    return rows, scores
