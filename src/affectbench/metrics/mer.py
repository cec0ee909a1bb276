"""MER-UniBench's binary sentiment view, kept under its own name: ``MER_binary_WAF``.

AffectGPT's MER-UniBench scores sentiment datasets (MOSI, MOSEI, SIMS, SIMS v2, MELD
sentiment) by dropping the samples whose *true* label is neutral and reporting the weighted
F1 ("WAF") of positive vs negative. It is not MMSA's Non0_F1_score and must never share its
name. Definition used here:

- Regression targets: neutral = score == 0 (dropped); positive = score > 0, negative < 0.
  Predictions: > 0 positive, < 0 negative; exactly 0, None, NaN or non-numeric are
  "non-polar" -- always wrong (Non0_F1_score would call an exact 0 negative instead).
- Label targets (case-insensitive): "neutral" dropped; "positive" / "negative" kept; any other
  target label raises MetricInputError. Predictions other than positive/negative (neutral,
  None, unknown) are non-polar and always wrong.
- Weighted F1 over {negative, positive}, weights = true support; the non-polar class is not
  in the averaging set (as unparsed predictions in ``classification``).
- On a 0-1 scale (AffectGPT's tables print x100). NaN when no polar sample remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._common import NAN, MetricInputError, check_lengths, round4, to_float_array, weighted_f1_from_counts
from .classification import counts

MER_BINARY_KEY = "MER_binary_WAF"
_POLAR = {"negative": 0, "positive": 1}


def _is_label_task(targets: Sequence[Any]) -> bool:
    return len(targets) > 0 and isinstance(targets[0], str)


def _polar_label(x: Any) -> int:
    return _POLAR.get(x.strip().lower(), 2) if isinstance(x, str) else 2


def mer_binary_codes(preds: Sequence[Any], targets: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(pred codes, target codes) over the polar samples: 0 negative, 1 positive, 2 non-polar."""
    check_lengths(preds, targets)
    if _is_label_task(targets):
        t = np.array([_polar_label(x) if str(x).strip().lower() != "neutral" else -1 for x in targets], np.intp)
        if (t == 2).any():
            i = int(np.flatnonzero(t == 2)[0])
            raise MetricInputError(
                f"MER_binary_WAF needs sentiment targets (positive/negative/neutral), got {targets[i]!r} at #{i}"
            )
        p = np.array([_polar_label(x) for x in preds], np.intp)
    else:
        tf = to_float_array(targets)
        if not np.isfinite(tf).all():
            raise MetricInputError("MER_binary_WAF: regression targets must be finite numbers")
        t = np.where(tf > 0, 1, np.where(tf < 0, 0, -1))
        pf = to_float_array(preds)
        with np.errstate(invalid="ignore"):
            p = np.where(pf > 0, 1, np.where(pf < 0, 0, 2))  # NaN compares False -> non-polar
    keep = t >= 0
    return p[keep], t[keep]


def mer_binary_waf(preds: Sequence[Any], targets: Sequence[Any]) -> float:
    """MER-UniBench binary weighted F1 (unrounded); see the module docstring."""
    p, t = mer_binary_codes(preds, targets)
    return float(weighted_f1_from_counts(*counts(p, t, 2))) if t.size else NAN


def mer_binary_scores(preds: Sequence[Any], targets: Sequence[Any]) -> dict[str, float]:
    """``{"MER_binary_WAF": value}`` rounded to 4 decimals."""
    return {MER_BINARY_KEY: round4(mer_binary_waf(preds, targets))}
