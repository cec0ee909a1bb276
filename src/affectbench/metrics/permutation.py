"""Paired permutation (approximate randomisation) test between two systems, and Holm's correction.

Under the null hypothesis the two systems are exchangeable on each sample, so each sample's pair
of answers may be swapped. The statistic is delta = metric(b) − metric(a) on the same samples;
the two-sided p-value is the share of swap patterns whose |delta*| reaches |delta|:
- exact (every one of the 2^n patterns) when 2^n ≤ `n_resamples`: p = count / 2^n;
- otherwise `n_resamples` random patterns from ``np.random.default_rng(seed)``:
  p = (1 + count) / (1 + n_resamples) (never 0; Phipson & Smyth 2010).
This is scipy.stats.permutation_test(..., permutation_type="samples", alternative="two-sided")
for a paired statistic (the null distribution is symmetric about 0, so scipy's 2·min(one-sided
p) equals the |delta| count). Swapping is per sample, which is valid under exchangeability
whatever the grouping. Samples both runs answered identically cannot change delta.

Holm (1979): sort the m p-values ascending, adjusted p_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j));
a row survives at level alpha when its adjusted p ≤ alpha (as statsmodels' multipletests "holm").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._common import NAN, MetricInputError

_TOL = 1e-12  # |delta*| >= |delta| up to float noise (scipy uses a relative tolerance likewise)
_CHUNK = 2048


@dataclass(frozen=True)
class PermutationResult:
    """delta = metric(b) − metric(a), its two-sided p-value, and how many swap patterns were used."""

    delta: float
    p_value: float
    n_resamples: int
    exact: bool


def _deltas(
    metric_fn: Callable[..., Any], a: Sequence[Any], b: Sequence[Any], targets, masks: np.ndarray
) -> np.ndarray:
    """delta for each swap mask (rows: 1 = swap that sample's answers)."""
    if hasattr(metric_fn, "stats") and hasattr(metric_fn, "finish"):
        sa, sb = metric_fn.stats(a, targets), metric_fn.stats(b, targets)
        diff = sb - sa
        moved = masks @ diff
        return np.asarray(metric_fn.finish(sb.sum(0) - moved), float) - np.asarray(
            metric_fn.finish(sa.sum(0) + moved), float
        )
    pa, pb = np.empty(len(a), dtype=object), np.empty(len(b), dtype=object)
    pa[:], pb[:] = list(a), list(b)
    out = []
    for m in masks.astype(bool):
        xa, xb = np.where(m, pb, pa), np.where(m, pa, pb)
        out.append(float(metric_fn(list(xb), targets)) - float(metric_fn(list(xa), targets)))
    return np.asarray(out)


def paired_permutation(
    metric_fn: Callable[..., Any],
    preds_a: Sequence[Any],
    preds_b: Sequence[Any],
    targets: Sequence[Any],
    n_resamples: int = 9999,
    seed: int = 0,
) -> PermutationResult:
    """Two-sided paired permutation test of metric(b) − metric(a) on aligned samples (see module doc)."""
    if not len(preds_a) == len(preds_b) == len(targets):
        raise MetricInputError(
            f"got {len(preds_a)} and {len(preds_b)} predictions for {len(targets)} targets; pass aligned lists"
        )
    if n_resamples < 1:
        raise MetricInputError(f"a permutation test needs n_resamples >= 1, got {n_resamples}")
    n = len(targets)
    if n == 0:
        return PermutationResult(NAN, NAN, 0, True)
    observed = float(metric_fn(preds_b, targets)) - float(metric_fn(preds_a, targets))
    if not np.isfinite(observed):
        return PermutationResult(observed, NAN, 0, True)
    # only samples where the answers differ can move delta; the rest stay fixed
    differ = [i for i in range(n) if preds_a[i] != preds_b[i]]
    k = len(differ)
    if k == 0:  # every swap leaves the runs as they are
        return PermutationResult(observed, 1.0, 1, True)
    exact = k <= 30 and 2**k <= n_resamples
    count = total = 0
    rng = np.random.default_rng(seed)
    if exact:
        patterns = itertools.product((0.0, 1.0), repeat=k)
        chunks = iter(lambda: list(itertools.islice(patterns, _CHUNK)), [])
    else:

        def _random():
            left = n_resamples
            while left > 0:
                b = min(_CHUNK, left)
                left -= b
                yield rng.integers(0, 2, size=(b, k)).astype(np.float64)

        chunks = _random()
    for chunk in chunks:
        sub = np.asarray(chunk, dtype=np.float64).reshape(-1, k)
        masks = np.zeros((sub.shape[0], n))
        masks[:, differ] = sub
        d = _deltas(metric_fn, preds_a, preds_b, targets, masks)
        d = d[np.isfinite(d)]
        count += int(np.count_nonzero(np.abs(d) >= abs(observed) - _TOL))
        total += int(d.size)
    if total == 0:
        return PermutationResult(observed, NAN, 0, exact)
    p = count / total if exact else (1 + count) / (1 + total)
    return PermutationResult(observed, float(min(1.0, p)), total, exact)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values in the input order (None/NaN stay None and do not count in m)."""
    idx = [i for i, p in enumerate(p_values) if p is not None and np.isfinite(p)]
    out: list[float | None] = [None] * len(p_values)
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda j: p_values[j])):  # type: ignore[arg-type,return-value]
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))  # type: ignore[arg-type]
        out[i] = running
    return out
