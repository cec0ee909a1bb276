"""MMSA-exact sentiment suites for CMU-MOSI/MOSEI and CH-SIMS/SIMS v2 (REFERENCE.md §3).

Key names and definitions follow MMSA's ``metricsTop.py`` so numbers can sit next to
MMSA-based papers, with one renaming so that one name means one thing: MMSA's MAE and Corr are
``MAE_answered`` and ``Corr_answered`` here, computed on the answered predictions only, and
``coverage`` is the share of answered predictions (with coverage 1 they are MMSA's MAE/Corr).
Unread predictions earn no credit in the class metrics (see ``_common``):

- MOSI/MOSEI (scores unclipped): MAE, Corr (Pearson); Mult_acc_7 / Mult_acc_5: clip to
  [-3, 3] / [-2, 2], ``np.round`` (half-to-even: 2.5 -> 2, -0.5 -> -0), accuracy;
  Has0_*: all samples, class = x >= 0; Non0_*: samples with label != 0, class = x > 0
  (so a prediction of exactly 0 is non-negative for Has0 but negative for Non0);
  *_F1_score = weighted F1.
- SIMS/SIMS v2: predictions and labels clipped to [-1, 1] first (MAE/Corr on clipped values);
  classes by right-closed intervals (lo, hi]: Acc-2 [-1, 0] | (0, 1] (0 is negative),
  Acc-3 [-1, -0.1] | (-0.1, 0.1] | (0.1, 1], Acc-5 with edges -0.7, -0.1, 0.1, 0.7;
  F1_score = weighted F1 of the Acc-2 classes.

Defined edge cases (MMSA itself crashes or warns on these):

- Corr is NaN when predictions or labels are constant (Pearson r divides by their standard
  deviation, which is 0: the correlation is undefined, not 0), or with fewer than 2 samples.
  No warning is emitted.
- Non0_* are NaN when every label is 0 (no samples left).
- Empty inputs give every key as NaN.
- Unread predictions (None, NaN, ±inf, non-numbers) are wrong in every accuracy and F1 and
  left out of MAE_answered/Corr_answered (NaN when nothing is answered); NaN labels raise
  MetricInputError (see ``_common``).

Everything is computed in float64 (MMSA computes from float32 tensors; differences are below
1e-6 before rounding). Values are rounded with ``np.round(x, 4)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._common import (
    NAN,
    MetricInputError,
    binary_weighted_f1,
    check_lengths,
    regression_preds,
    regression_targets,
    round4,
)

MOSI_KEYS = (
    "Has0_acc_2",
    "Has0_F1_score",
    "Non0_acc_2",
    "Non0_F1_score",
    "Mult_acc_5",
    "Mult_acc_7",
    "MAE_answered",
    "Corr_answered",
    "coverage",
)
SIMS_KEYS = ("Mult_acc_2", "Mult_acc_3", "Mult_acc_5", "F1_score", "MAE_answered", "Corr_answered", "coverage")

# Inner edges of SIMS's right-closed intervals (lo, hi]; the outer edges are MMSA's ±1.01.
SIMS_EDGES: dict[int, tuple[float, ...]] = {
    2: (0.0,),
    3: (-0.1, 0.1),
    5: (-0.7, -0.1, 0.1, 0.7),
}

_SUITES = {"mosi": "mosi", "mosei": "mosi", "sims": "sims", "simsv2": "sims"}


def pearson(p: np.ndarray, t: np.ndarray) -> float:
    """Pearson r as ``np.corrcoef`` computes it; NaN when either side is constant or n < 2."""
    if p.size < 2 or np.ptp(p) == 0 or np.ptp(t) == 0:
        return NAN
    with np.errstate(all="ignore"):
        return float(np.corrcoef(p, t)[0, 1])


def sims_classes(x: np.ndarray, n_classes: int) -> np.ndarray:
    """Class index of each (clipped) score under SIMS's right-closed intervals; -1 for NaN (unread)."""
    edges = np.asarray(SIMS_EDGES[n_classes])
    # searchsorted(side="left") counts edges strictly below x: x == edge falls in the lower class.
    out = np.searchsorted(edges, np.clip(x, -1.0, 1.0), side="left")
    return np.where(np.isnan(x), -1, out)


def _accuracy(a: np.ndarray, b: np.ndarray, answered: np.ndarray | None = None) -> float:
    """Share of equal entries; an unanswered entry is never equal."""
    if not a.size:
        return NAN
    hit = a == b if answered is None else (a == b) & answered
    return float(np.count_nonzero(hit) / a.size)


def _answered_views(p: np.ndarray, t: np.ndarray, answered: np.ndarray) -> dict[str, float]:
    """MAE and Pearson r on the answered samples, and their share."""
    pa, ta = p[answered], t[answered]
    return {
        "MAE_answered": float(np.mean(np.abs(pa - ta))) if pa.size else NAN,
        "Corr_answered": pearson(pa, ta),
        "coverage": float(np.count_nonzero(answered) / p.size),
    }


def mosi_raw(p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    """Unrounded MOSI/MOSEI suite on float arrays of equal length (NaN in `p` = unread)."""
    if p.size == 0:
        return dict.fromkeys(MOSI_KEYS, NAN)
    a = np.isfinite(p)
    nz = t != 0
    with np.errstate(invalid="ignore"):
        tn, pn = t[nz] > 0, p[nz] > 0
        th, ph = t >= 0, p >= 0
        r5 = np.round(np.clip(p, -2.0, 2.0)), np.round(np.clip(t, -2.0, 2.0))
        r7 = np.round(np.clip(p, -3.0, 3.0)), np.round(np.clip(t, -3.0, 3.0))
    return {
        "Has0_acc_2": _accuracy(ph, th, a),
        "Has0_F1_score": binary_weighted_f1(th, ph, a),
        "Non0_acc_2": _accuracy(pn, tn, a[nz]),
        "Non0_F1_score": binary_weighted_f1(tn, pn, a[nz]) if tn.size else NAN,
        "Mult_acc_5": _accuracy(*r5, a),
        "Mult_acc_7": _accuracy(*r7, a),
        **_answered_views(p, t, a),
    }


def sims_raw(p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    """Unrounded SIMS/SIMS v2 suite on float arrays of equal length (NaN in `p` = unread)."""
    if p.size == 0:
        return dict.fromkeys(SIMS_KEYS, NAN)
    pc, tc = np.clip(p, -1.0, 1.0), np.clip(t, -1.0, 1.0)
    a = np.isfinite(p)
    p2, t2 = sims_classes(pc, 2), sims_classes(tc, 2)
    return {
        "Mult_acc_2": _accuracy(p2, t2),
        "Mult_acc_3": _accuracy(sims_classes(pc, 3), sims_classes(tc, 3)),
        "Mult_acc_5": _accuracy(sims_classes(pc, 5), sims_classes(tc, 5)),
        "F1_score": binary_weighted_f1(t2 == 1, p2 == 1, a),
        **_answered_views(pc, tc, a),
    }


def _prepare(preds: Sequence[Any], labels: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    check_lengths(preds, labels)
    return regression_preds(preds), regression_targets(labels)


def mosi_scores(preds: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
    """MMSA's MOSI/MOSEI suite, rounded to 4 decimals (half-to-even)."""
    return {k: round4(v) for k, v in mosi_raw(*_prepare(preds, labels)).items()}


def sims_scores(preds: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
    """MMSA's CH-SIMS / SIMS v2 suite, rounded to 4 decimals (half-to-even)."""
    return {k: round4(v) for k, v in sims_raw(*_prepare(preds, labels)).items()}


def suite_for(dataset: str) -> str:
    """'mosi' or 'sims' for an MMSA dataset name (case-, dash- and prefix-insensitive)."""
    key = dataset.lower().replace("cmu-", "").replace("ch-", "").replace("-", "").replace("_", "").strip()
    try:
        return _SUITES[key]
    except KeyError:
        raise MetricInputError(
            f"no MMSA metric suite for dataset {dataset!r}; use one of mosi, mosei, sims, simsv2"
        ) from None


def mmsa_scores(dataset: str, preds: Sequence[Any], labels: Sequence[Any]) -> dict[str, float]:
    """MMSA's suite for `dataset` in {mosi, mosei, sims, simsv2} (MAE/Corr as MAE_answered/Corr_answered)."""
    return mosi_scores(preds, labels) if suite_for(dataset) == "mosi" else sims_scores(preds, labels)
