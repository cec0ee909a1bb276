"""Small statistics the analysis needs beyond `affectbench.metrics`: ranks, Spearman, and a
generic (cluster) bootstrap over sample indices, so several runs are resampled jointly."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap interval over `n` units."""

    point: float
    lo: float
    hi: float
    n: int

    def excludes_zero(self) -> bool:
        return bool(self.lo > 0 or self.hi < 0)


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


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson r; NaN when either side is constant (r is undefined there)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(a) < 2:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    den = math.sqrt(float((a * a).sum()) * float((b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson r of average ranks); NaN when a side is constant."""
    return pearson(rankdata(x), rankdata(y))


def resample_indices(n: int, groups: Sequence[str] | None, n_boot: int, seed: int) -> list[np.ndarray]:
    """`n_boot` bootstrap index sets; with groups, whole groups are drawn (cluster bootstrap)."""
    rng = np.random.default_rng(seed)
    if not groups or len(set(groups)) <= 1:
        return [rng.integers(0, n, n) for _ in range(n_boot)]
    members: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    blocks = [np.asarray(v) for v in members.values()]
    out = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(blocks), len(blocks))
        out.append(np.concatenate([blocks[k] for k in pick]))
    return out


def bootstrap(
    stat: Callable[[np.ndarray], float],
    n: int,
    groups: Sequence[str] | None = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Interval:
    """Percentile interval of `stat(indices)` over bootstrap resamples of `n` units."""
    point = float(stat(np.arange(n)))
    vals = np.asarray([stat(idx) for idx in resample_indices(n, groups, n_boot, seed)], dtype=float)
    vals = vals[np.isfinite(vals)]
    if n == 0 or vals.size == 0:
        return Interval(point, float("nan"), float("nan"), n)
    lo, hi = np.quantile(vals, [alpha / 2, 1 - alpha / 2])
    return Interval(point, float(lo), float(hi), n)


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
    return bootstrap(lambda idx: spearman(xs[idx], ys[idx]), len(pairs), n_boot=n_boot, alpha=alpha, seed=seed)


def metric_replicates(
    fn: Callable[..., float],
    preds_list: Sequence[Sequence[object]],
    targets: Sequence[object],
    groups: Sequence[str] | None,
    n_boot: int,
    seed: int,
) -> tuple[list[float], np.ndarray]:
    """Point values and (n_boot, len(preds_list)) bootstrap replicates of `fn` for several runs
    resampled jointly (same draws for every run), as `affectbench.metrics.paired_bootstrap` does."""
    from ..metrics.bootstrap import resample_weights

    points = [float(fn(p, targets)) for p in preds_list]
    rows: list[np.ndarray] = []
    if hasattr(fn, "stats") and hasattr(fn, "finish"):
        stats = [fn.stats(p, targets) for p in preds_list]
        for w in resample_weights(len(targets), groups, n_boot, seed):
            rows.append(np.stack([np.asarray(fn.finish(w @ st), dtype=float) for st in stats], axis=1))
    else:
        for idx in resample_indices(len(targets), groups, n_boot, seed):
            tt = [targets[i] for i in idx]
            rows.append(np.asarray([[float(fn([p[i] for i in idx], tt)) for p in preds_list]]))
    reps = np.concatenate(rows, axis=0) if rows else np.empty((0, len(preds_list)))
    return points, reps


def percentile_interval(point: float, values: np.ndarray, n: int, alpha: float = 0.05) -> Interval:
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Interval(point, float("nan"), float("nan"), n)
    lo, hi = np.percentile(v, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return Interval(point, float(lo), float(hi), n)
