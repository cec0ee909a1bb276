"""Shared plumbing for the metric suites: input coercion, rounding, F1 from counts.

Policies (shared by every suite, so that every number means the same thing):

- Regression predictions: ``None``, NaN, ±inf and anything that is not a number are *unread*
  and earn no credit: they are kept as NaN, form a class of their own that never equals a
  target's class (wrong in every accuracy; a false negative of the true class and nobody's
  prediction in weighted F1 — sklearn's ``f1_score(..., labels=[neg, pos])`` with a sentinel),
  and are left out of the views that need a number (``MAE_answered``, ``Corr_answered``, computed
  on answered samples only, next to their ``coverage``). Nothing is filled in: an unread answer
  is not a neutral 0.0.
- Regression targets must be finite numbers; a NaN target is a dataset bug and raises
  `MetricInputError` (silently dropping it would change the denominator of every metric).
- Rounding: reported values are ``np.round(x, 4)`` (numpy's round-half-to-even on ``x * 1e4``),
  as REFERENCE.md §3 prescribes; NaN stays NaN.
- Weighted F1 (sklearn's ``average="weighted"``): per-class F1 = 2·TP / (support + predicted),
  0 when a class is neither true nor predicted; averaged with weights = true support. Classes
  that are only predicted (support 0) weigh nothing. NaN when there are no samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.errors import AffectbenchError

NAN = float("nan")


class MetricInputError(AffectbenchError, ValueError):
    """Inputs to a metric are malformed (length mismatch, NaN target, unknown label or suite)."""


def _float_or_nan(v: Any) -> float:
    if v is None:
        return NAN
    try:
        return float(v)
    except (TypeError, ValueError):
        return NAN


def to_float_array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """1-D float64 array; elements that are not numbers become NaN."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64, copy=False).reshape(-1)
    try:
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        return np.array([_float_or_nan(v) for v in values], dtype=np.float64)


def regression_preds(preds: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Predicted scores as float64; unread (None/NaN/±inf/non-numeric) -> NaN (``np.isfinite`` is the
    answered mask)."""
    arr = to_float_array(preds)
    bad = ~np.isfinite(arr)
    if bad.any():
        arr = arr.copy()
        arr[bad] = NAN
    return arr


def regression_targets(targets: Sequence[Any] | np.ndarray) -> np.ndarray:
    """True scores as float64; raises MetricInputError on a non-finite target."""
    arr = to_float_array(targets)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise MetricInputError(
            f"regression target #{i} is {list(targets)[i]!r}, not a finite number; "
            "fix the dataset's label (targets must be finite scores)"
        )
    return arr


def check_lengths(preds: Sequence[Any], targets: Sequence[Any]) -> None:
    if len(preds) != len(targets):
        raise MetricInputError(
            f"got {len(preds)} predictions for {len(targets)} targets; pass aligned lists of equal length"
        )


def round4(x: float) -> float:
    """REFERENCE.md §3 rounding: numpy half-to-even at 4 decimals, as a Python float."""
    return float(np.round(float(x), 4))


def safe_div(num: np.ndarray | float, den: np.ndarray | float) -> np.ndarray:
    """num / den elementwise, NaN where den == 0, without warnings."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def f1_per_class(tp: np.ndarray, support: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Per-class F1 = 2TP/(support+predicted); 0 where the class is neither true nor predicted."""
    den = np.asarray(support, dtype=np.float64) + predicted
    out = np.zeros(den.shape)
    np.divide(2.0 * np.asarray(tp, dtype=np.float64), den, out=out, where=den > 0)
    return out


def weighted_f1_from_counts(tp: np.ndarray, support: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """sklearn's weighted F1 from per-class counts along the last axis (batched)."""
    f1 = f1_per_class(tp, support, predicted)
    support = np.asarray(support, dtype=np.float64)
    return safe_div((support * f1).sum(-1), support.sum(-1))


def binary_weighted_f1(truth: np.ndarray, pred: np.ndarray, answered: np.ndarray | None = None) -> float:
    """Weighted F1 of two boolean arrays (classes False/True), sklearn-compatible; where `answered`
    is False the prediction is unread: it counts for neither class (sklearn's ``labels=[False, True]``
    with a third, sentinel prediction)."""
    n = truth.size
    a = np.ones(n, dtype=bool) if answered is None else answered
    s1 = int(np.count_nonzero(truth))
    p1 = int(np.count_nonzero(pred & a))
    p0 = int(np.count_nonzero(~pred & a))
    tp1 = int(np.count_nonzero(truth & pred & a))
    tp0 = int(np.count_nonzero(~truth & ~pred & a))
    tp = np.array([tp0, tp1])
    return float(weighted_f1_from_counts(tp, np.array([n - s1, s1]), np.array([p0, p1])))
