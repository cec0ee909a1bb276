"""Bootstrap confidence intervals and a paired bootstrap test between two runs.

- Resampling: n_samples draws with replacement, or -- when `groups` is given -- n_groups
  draws of whole groups (all samples sharing a video/dialogue come in or stay out together;
  replicate sizes then vary, as in any cluster bootstrap). A replicate is stored as the count
  of each sample, drawn in chunks from ``np.random.default_rng(seed)``, so results are a
  function of (inputs, groups, n, seed) only.
- Metrics with ``stats``/``finish`` (see ``additive``; ``primary_metric`` returns those) get all
  replicates from one matrix product. Any other callable ``metric_fn(preds, targets)`` is
  called once per replicate on numpy arrays indexed from the inputs (same draws, same
  results up to the metric's own arithmetic).
- Intervals are percentile intervals (``np.percentile``, linear interpolation) at
  ``alpha/2`` and ``1 - alpha/2``. Replicates where the metric is NaN (e.g. no non-zero label
  drawn) are left out; ``n`` reports how many replicates were used, ``requested`` how many were
  drawn, and ``undefined`` the share left out — shown next to every interval, with a warning
  (``warning``) above ``UNDEFINED_WARN`` (5 %): the interval then describes only the replicates
  where the metric exists.
- A proportion at the boundary (k = 0 or k = n successes: 10/10 correct, a class never
  predicted) has a zero-width percentile interval, since every replicate repeats it. For metrics
  that declare themselves proportions (``metric_fn.proportion`` and
  ``metric_fn.counts(preds, targets) -> (k, n)``, see ``additive``), ``bootstrap_ci`` then gives
  the Clopper–Pearson exact interval instead (Clopper & Pearson 1934, Biometrika 26:404;
  ``method="clopper-pearson"``), which Brown, Cai & DasGupta (2001, Statistical Science 16:101)
  note is conservative but never zero-width;
  ``wilson_interval`` is the score interval (Wilson 1927, JASA 22:209) they recommend for small n.
  Both treat samples as independent (with clusters the effective n is smaller).
- Paired test: both runs are resampled with the same draws; delta = metric(b) - metric(a);
  ``p_value`` = min(1, 2 * min(P*(delta <= 0), P*(delta >= 0))) with P* = (1 + count) /
  (1 + replicates), a two-sided bootstrap sign test (never exactly 0); ``b_better_frac`` =
  share of replicates with delta > 0. Identical runs give delta 0, interval [0, 0], p = 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import NAN, MetricInputError

_CHUNK_ELEMENTS = 4_000_000  # replicate-by-sample cells drawn at once (~32 MB of int64)
UNDEFINED_WARN = 0.05  # share of undefined replicates above which an interval carries a warning


def undefined_warning(share: float) -> str | None:
    """The warning shown next to an interval whose replicates were undefined more than UNDEFINED_WARN."""
    if share > UNDEFINED_WARN:
        return (
            f"{share:.1%} of bootstrap replicates undefined (metric NaN, e.g. a class absent from the draw); "
            "the interval describes only the others"
        )
    return None


class UndefinedShare:
    """`undefined` (share of drawn replicates where the statistic was NaN and left out) and its
    `warning`, for results with `n` replicates used of `requested` drawn."""

    n: int
    requested: int

    @property
    def undefined(self) -> float:
        return 1.0 - self.n / self.requested if self.requested else 0.0

    @property
    def warning(self) -> str | None:
        return undefined_warning(self.undefined)


@dataclass(frozen=True)
class CI(UndefinedShare):
    """Point estimate and interval; `n` = bootstrap replicates used of `requested` drawn; `method`:
    "percentile" or "clopper-pearson" (a proportion at the boundary, see the module docstring)."""

    point: float
    lo: float
    hi: float
    n: int
    requested: int = 0
    method: str = "percentile"


@dataclass(frozen=True)
class PairedResult(UndefinedShare):
    """metric(b) - metric(a) with its percentile interval and two-sided bootstrap p-value; `n`
    replicates used of `requested` drawn (`undefined`: the share where either side was NaN)."""

    delta: float
    lo: float
    hi: float
    p_value: float
    b_better_frac: float
    n: int
    point_a: float = NAN
    point_b: float = NAN
    requested: int = 0


def _z(alpha: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(1 - alpha / 2)


def wilson_interval(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n (Wilson 1927); (nan, nan) when n = 0."""
    if n <= 0:
        return NAN, NAN
    z = _z(alpha)
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, center - half)), float(min(1.0, center + half))


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space."""
    if p <= 0:
        return 1.0
    if p >= 1:
        return 1.0 if k >= n else 0.0
    i = np.arange(k + 1)
    lf = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    logpmf = lf[n] - lf[i] - lf[n - i] + i * np.log(p) + (n - i) * np.log1p(-p)
    return float(np.exp(logpmf).sum())


def _bisect(f: Callable[[float], float], lo: float = 0.0, hi: float = 1.0) -> float:
    """The root of a function decreasing in p on [lo, hi], to 1e-12."""
    for _ in range(60):
        mid = (lo + hi) / 2
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def exact_interval(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Clopper–Pearson exact interval of k/n (Clopper & Pearson 1934): the p where P(X >= k) and
    P(X <= k) reach alpha/2; closed form at the boundary ([0, 1 - (alpha/2)^(1/n)] for k = 0)."""
    if n <= 0:
        return NAN, NAN
    a = alpha / 2
    lo = 0.0 if k == 0 else _bisect(lambda p: a - (1 - _binom_cdf(k - 1, n, p)))
    hi = 1.0 if k == n else _bisect(lambda p: _binom_cdf(k, n, p) - a)
    if k == 0:
        hi = 1 - a ** (1 / n)
    if k == n:
        lo = a ** (1 / n)
    return float(lo), float(hi)


def proportion_interval(k: int, n: int, alpha: float = 0.05, method: str = "exact") -> tuple[float, float]:
    """Interval of a binomial proportion: "exact" (Clopper–Pearson) or "wilson"."""
    if method == "exact":
        return exact_interval(k, n, alpha)
    if method == "wilson":
        return wilson_interval(k, n, alpha)
    raise MetricInputError(f"proportion interval method must be exact or wilson, got {method!r}")


def resample_weights(n_samples: int, groups: Sequence[Any] | None, n: int, seed: int) -> Iterator[np.ndarray]:
    """Yield (rows, n_samples) float arrays: how often each sample appears in each replicate."""
    rng = np.random.default_rng(seed)
    if groups is None:
        inverse, units = None, n_samples
    else:
        _, inverse = np.unique(np.array([str(g) for g in groups]), return_inverse=True)
        units = int(inverse.max()) + 1 if inverse.size else 0
    rows = max(1, _CHUNK_ELEMENTS // max(units, n_samples, 1))
    done = 0
    while done < n:
        b = min(rows, n - done)
        draws = rng.integers(0, units, size=(b, units))
        offsets = (np.arange(b) * units)[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=b * units).reshape(b, units)
        w = counts if inverse is None else counts[:, inverse]
        yield w.astype(np.float64)
        done += b


def _indexable(values: Sequence[Any]) -> np.ndarray:
    """A numpy array of `values` indexable along its first axis (object dtype when mixed)."""
    if isinstance(values, np.ndarray):
        return values
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = np.empty(len(values), dtype=object)
        arr[:] = list(values)
    return arr


def replicates(
    metric_fn: Callable[..., Any],
    preds_list: list[Sequence[Any]],
    targets: Sequence[Any],
    groups: Sequence[Any] | None,
    n: int,
    seed: int,
) -> list[np.ndarray]:
    n_samples = len(targets)
    out: list[list[np.ndarray]] = [[] for _ in preds_list]
    if hasattr(metric_fn, "stats") and hasattr(metric_fn, "finish"):
        stats = [metric_fn.stats(p, targets) for p in preds_list]
        for w in resample_weights(n_samples, groups, n, seed):
            for acc, s in zip(out, stats, strict=True):
                acc.append(np.asarray(metric_fn.finish(w @ s), dtype=np.float64))
    else:
        ps = [_indexable(p) for p in preds_list]
        t = _indexable(targets)
        base = np.arange(n_samples)
        for w in resample_weights(n_samples, groups, n, seed):
            for row in w.astype(np.intp):
                idx = np.repeat(base, row)
                for acc, p in zip(out, ps, strict=True):
                    acc.append(np.array([metric_fn(p[idx], t[idx])], dtype=np.float64))
    return [np.concatenate(a) if a else np.empty(0) for a in out]


def _check(preds: Sequence[Any], targets: Sequence[Any], groups: Sequence[Any] | None, n: int, alpha: float) -> None:
    if len(preds) != len(targets):
        raise MetricInputError(f"got {len(preds)} predictions for {len(targets)} targets; pass aligned lists")
    if groups is not None and len(groups) != len(targets):
        raise MetricInputError(f"got {len(groups)} groups for {len(targets)} targets; pass one group per sample")
    if n < 1:
        raise MetricInputError(f"bootstrap needs n >= 1 replicates, got {n}")
    if not 0 < alpha < 1:
        raise MetricInputError(f"alpha must be in (0, 1), got {alpha}")


def percentile_bounds(values: np.ndarray, alpha: float) -> tuple[float, float, int]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return NAN, NAN, 0
    lo, hi = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi), int(finite.size)


def bootstrap_ci(
    metric_fn: Callable[[Any, Any], float],
    preds: Sequence[Any],
    targets: Sequence[Any],
    groups: Sequence[Any] | None = None,
    n: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> CI:
    """Percentile bootstrap interval of metric_fn(preds, targets), by group when `groups` is given;
    for a proportion at the boundary (k = 0 or n), the Clopper–Pearson exact interval (module docstring)."""
    _check(preds, targets, groups, n, alpha)
    if len(targets) == 0:
        return CI(NAN, NAN, NAN, 0, n)
    point = float(metric_fn(preds, targets))
    (values,) = replicates(metric_fn, [preds], targets, groups, n, seed)
    lo, hi, used = percentile_bounds(values, alpha)
    if getattr(metric_fn, "proportion", False):
        k, total = metric_fn.counts(preds, targets)
        if total > 0 and k in (0, total):
            lo, hi = exact_interval(k, total, alpha)
            return CI(point, lo, hi, used, n, "clopper-pearson")
    return CI(point, lo, hi, used, n)


def paired_bootstrap(
    metric_fn: Callable[[Any, Any], float],
    preds_a: Sequence[Any],
    preds_b: Sequence[Any],
    targets: Sequence[Any],
    groups: Sequence[Any] | None = None,
    n: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> PairedResult:
    """Paired bootstrap of metric(b) - metric(a) over the same (aligned) samples."""
    _check(preds_a, targets, groups, n, alpha)
    _check(preds_b, targets, groups, n, alpha)
    if len(targets) == 0:
        return PairedResult(NAN, NAN, NAN, NAN, NAN, 0, requested=n)
    a, b = float(metric_fn(preds_a, targets)), float(metric_fn(preds_b, targets))
    va, vb = replicates(metric_fn, [preds_a, preds_b], targets, groups, n, seed)
    d = vb - va
    d = d[np.isfinite(d)]
    lo, hi, used = percentile_bounds(d, alpha)
    if used == 0:
        return PairedResult(b - a, NAN, NAN, NAN, NAN, 0, a, b, n)
    p_le = (1 + np.count_nonzero(d <= 0)) / (1 + used)
    p_ge = (1 + np.count_nonzero(d >= 0)) / (1 + used)
    p = float(min(1.0, 2 * min(p_le, p_ge)))
    return PairedResult(b - a, lo, hi, p, float(np.count_nonzero(d > 0) / used), used, a, b, n)
