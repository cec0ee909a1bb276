"""Small statistics the analysis needs beyond `affectbench.metrics`: ranks, Spearman with a
bootstrap interval, and joint replicates of several runs (the draws of `metrics.bootstrap`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..metrics.bootstrap import bootstrap_ci, percentile_bounds, replicates, undefined_warning
from ..metrics.mmsa import pearson


@dataclass(frozen=True)
class Interval:
    """A point estimate with a bootstrap interval over `n` units; `undefined` is the share of replicates
    where the statistic was undefined (left out: shown next to the interval, `warning` above 5 %)."""

    point: float
    lo: float
    hi: float
    n: int
    undefined: float = 0.0
    method: str = "percentile"

    def excludes_zero(self) -> bool:
        return bool(self.lo > 0 or self.hi < 0)

    @property
    def warning(self) -> str | None:
        return undefined_warning(self.undefined)


def rankdata(x: Sequence[float]) -> np.ndarray:
    """Ranks starting at 1, ties given their average rank (as scipy.stats.rankdata)."""
    a = np.asarray(x, dtype=float)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=float)
    sa = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sa[j + 1] == sa[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson r of average ranks); NaN when a side is constant."""
    return pearson(rankdata(x), rankdata(y))


def spearman_ci(
    x: Sequence[float], y: Sequence[float], n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> Interval:
    """Spearman rho with a bootstrap interval over the (x, y) pairs; pairs with a missing side are dropped."""
    pairs = [
        (float(a), float(b))
        for a, b in zip(x, y, strict=True)
        if a is not None and b is not None and math.isfinite(float(a)) and math.isfinite(float(b))
    ]
    xs = np.asarray([p[0] for p in pairs])
    ys = np.asarray([p[1] for p in pairs])
    ci = bootstrap_ci(spearman, xs, ys, n=n_boot, alpha=alpha, seed=seed)
    return Interval(ci.point, ci.lo, ci.hi, len(pairs), ci.undefined)


def metric_replicates(
    fn: Callable[..., float],
    preds_list: Sequence[Sequence[object]],
    targets: Sequence[object],
    groups: Sequence[str] | None,
    n_boot: int,
    seed: int,
) -> tuple[list[float], np.ndarray]:
    """Point values and (n_boot, len(preds_list)) bootstrap replicates of `fn` for several runs
    resampled jointly (the same draws as `affectbench.metrics.paired_bootstrap`)."""
    points = [float(fn(p, targets)) for p in preds_list]
    reps = replicates(fn, list(preds_list), targets, groups, n_boot, seed)
    return points, np.stack(reps, axis=1) if reps else np.empty((0, 0))


def percentile_interval(point: float, values: np.ndarray, n: int, alpha: float = 0.05) -> Interval:
    """`point` with the percentile interval of the finite `values`, over `n` units (the share of
    non-finite values is the interval's `undefined`)."""
    arr = np.asarray(values, dtype=float)
    lo, hi, used = percentile_bounds(arr, alpha)
    return Interval(point, lo, hi, n, 1.0 - used / arr.size if arr.size else 0.0)
