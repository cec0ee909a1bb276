"""Gains of runs over a baseline on shared samples (zero-shot vs GKP / SFT / GKP+SFT, …),
with paired bootstrap intervals from `affectbench.metrics`."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import AffectbenchError
from ..store import Store
from .model_cards import ModelCard
from .runs import aligned, higher_is_better, info_from_run, label, primary_metric


@dataclass
class GainRow:
    """One run compared with the baseline: `delta` = metric(run) − metric(baseline) on shared samples."""

    baseline: str
    run_id: str
    label: str
    dataset: str
    metric: str
    baseline_value: float
    value: float
    delta: float
    lo: float
    hi: float
    p_value: float | None
    n: int
    higher_is_better: bool

    @property
    def improved(self) -> bool | None:
        """True/False when the interval excludes zero in the good/bad direction, None when it does not."""
        if self.lo > 0 or self.hi < 0:
            return (self.lo > 0) == self.higher_is_better
        return None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["improved"] = self.improved
        return d


def compare_runs(
    store: Store,
    baseline_run_id: str,
    other_run_ids: Sequence[str],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    by: Sequence[str] = ("model", "setting"),
    cards: Iterable[ModelCard] | None = None,
    exclude: Collection[str] = (),
) -> list[GainRow]:
    """Delta of the primary metric of each run over the baseline, with a paired (cluster) bootstrap CI.

    Samples in `exclude` (ids) are left out of both runs, e.g. those whose knowledge leaked the answer.
    """
    from .. import metrics

    base = store.run(baseline_run_id)
    info = info_from_run(base)
    name, fn = primary_metric(info)
    cards = list(cards) if cards is not None else None
    rows = []
    for rid in other_run_ids:
        other = store.run(rid)
        if other.run_spec.dataset.name != base.run_spec.dataset.name:
            raise AffectbenchError(
                f"cannot compare run {rid} ({other.run_spec.dataset.name}) with baseline {baseline_run_id} "
                f"({base.run_spec.dataset.name}): runs must be on the same dataset"
            )
        al = aligned(store, [baseline_run_id, rid], exclude)
        if not al.sample_ids:
            left_out = f" outside the {len(exclude)} excluded ones" if exclude else ""
            raise AffectbenchError(
                f"runs {baseline_run_id} and {rid} share no answered samples{left_out}; nothing to compare"
            )
        groups = al.groups if any(al.groups) else None
        res = metrics.paired_bootstrap(
            fn, al.preds[baseline_run_id], al.preds[rid], al.targets, groups=groups, n=n_boot, alpha=alpha, seed=seed
        )
        rows.append(
            GainRow(
                baseline=baseline_run_id,
                run_id=rid,
                label=label(other, by, cards),
                dataset=info.name,
                metric=name,
                baseline_value=float(res.point_a),
                value=float(res.point_b),
                delta=float(res.delta),
                lo=float(res.lo),
                hi=float(res.hi),
                p_value=float(res.p_value),
                n=len(al.sample_ids),
                higher_is_better=higher_is_better(name),
            )
        )
    return rows


def gains_markdown(rows: Sequence[GainRow], digits: int = 4) -> str:
    """A markdown table of gains (delta with its interval; * where the interval excludes zero)."""
    if not rows:
        return ""
    f = f"{{:.{digits}f}}"
    out = [
        f"Baseline: `{rows[0].baseline}` — {rows[0].metric} "
        f"({'higher' if rows[0].higher_is_better else 'lower'} is better)",
        "",
        "| run | dataset | baseline | value | Δ | 95% CI | p | n |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        star = "*" if r.lo > 0 or r.hi < 0 else ""
        p = "" if r.p_value is None else f.format(r.p_value)
        out.append(
            f"| {r.label} | {r.dataset} | {f.format(r.baseline_value)} | {f.format(r.value)} | "
            f"{r.delta:+.{digits}f}{star} | [{f.format(r.lo)}, {f.format(r.hi)}] | {p} | {r.n} |"
        )
    return "\n".join(out) + "\n"
