"""Metrics that are a function of per-sample statistics summed over samples.

A bootstrap replicate only changes how often each sample is counted, so for such a metric
every replicate is ``finish(w @ S)``: ``S`` is the (n_samples, k) matrix of per-sample
statistics (computed once) and ``w`` the replicate's count of each sample. All replicates at
once are one matrix product, which is what makes ``bootstrap_ci`` fast. Calling the metric on
raw predictions gives exactly the value of the corresponding suite before rounding (same
integer counts, same final arithmetic).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._common import (
    MetricInputError,
    check_lengths,
    regression_preds,
    regression_targets,
    safe_div,
    weighted_f1_from_counts,
)
from .classification import encode
from .mmsa import sims_classes


class AdditiveMetric:
    """A metric = finish(sum over samples of stats(sample)); callable as metric(preds, targets)."""

    def __init__(
        self,
        name: str,
        stats: Callable[[Sequence[Any], Sequence[Any]], np.ndarray],
        finish: Callable[[np.ndarray], np.ndarray],
        proportion: bool = False,
    ) -> None:
        self.name = name
        self._stats = stats
        self._finish = finish
        self.proportion = proportion  # finish = successes / trials (stats columns 0 and 1)

    def counts(self, preds: Sequence[Any], targets: Sequence[Any]) -> tuple[int, int]:
        """(successes, trials) of a proportion metric (exact intervals at the boundary use them)."""
        if not self.proportion:
            raise MetricInputError(f"{self.name} is not a proportion; it has no (successes, trials)")
        sums = self.stats(preds, targets).sum(axis=0)
        return int(round(sums[0])), int(round(sums[1]))

    def stats(self, preds: Sequence[Any], targets: Sequence[Any]) -> np.ndarray:
        """Per-sample statistics, shape (n_samples, k), float64."""
        check_lengths(preds, targets)
        return self._stats(preds, targets)

    def finish(self, sums: np.ndarray) -> np.ndarray:
        """Metric values from summed statistics, shape (..., k) -> (...)."""
        return self._finish(np.asarray(sums, dtype=np.float64))

    def __call__(self, preds: Sequence[Any], targets: Sequence[Any]) -> float:
        return float(self.finish(self.stats(preds, targets).sum(axis=0)))

    def __repr__(self) -> str:
        return f"AdditiveMetric({self.name!r})"


def _ratio(sums: np.ndarray) -> np.ndarray:
    return safe_div(sums[..., 0], sums[..., 1])


def _non0_acc2_stats(preds: Sequence[Any], targets: Sequence[Any]) -> np.ndarray:
    p, t = regression_preds(preds), regression_targets(targets)
    valid = t != 0
    with np.errstate(invalid="ignore"):
        correct = valid & np.isfinite(p) & ((p > 0) == (t > 0))  # an unread answer is never correct
    return np.column_stack([correct, valid]).astype(np.float64)


def _sims_acc2_stats(preds: Sequence[Any], targets: Sequence[Any]) -> np.ndarray:
    p, t = regression_preds(preds), regression_targets(targets)
    correct = sims_classes(p, 2) == sims_classes(t, 2)  # unread (NaN) is class -1: never correct
    return np.column_stack([correct, np.ones_like(correct)]).astype(np.float64)


def non0_acc2() -> AdditiveMetric:
    """MOSI/MOSEI Non0_acc_2 (labels == 0 dropped, class = x > 0)."""
    return AdditiveMetric("Non0_acc_2", _non0_acc2_stats, _ratio, proportion=True)


def sims_acc2() -> AdditiveMetric:
    """SIMS Mult_acc_2 ([-1, 0] vs (0, 1] after clipping)."""
    return AdditiveMetric("Mult_acc_2", _sims_acc2_stats, _ratio, proportion=True)


def accuracy(labels: Sequence[str]) -> AdditiveMetric:
    """Accuracy over `labels` (an unread answer is wrong), as a proportion."""
    labels = list(labels)

    def stats(preds: Sequence[Any], targets: Sequence[Any]) -> np.ndarray:
        p, t, _ = encode(preds, targets, labels)
        return np.column_stack([p == t, np.ones(t.size)]).astype(np.float64)

    return AdditiveMetric("acc", stats, _ratio, proportion=True)


def recall(labels: Sequence[str], label: str) -> AdditiveMetric:
    """Recall of one class (share of its samples predicted as it), as a proportion; NaN without any."""
    labels = list(labels)
    c = labels.index(label)

    def stats(preds: Sequence[Any], targets: Sequence[Any]) -> np.ndarray:
        p, t, _ = encode(preds, targets, labels)
        return np.column_stack([(t == c) & (p == c), t == c]).astype(np.float64)

    return AdditiveMetric(f"recall/{label}", stats, _ratio, proportion=True)


def f1_weighted(labels: Sequence[str]) -> AdditiveMetric:
    """Weighted F1 over `labels`, unparsed predictions wrong (as in classification_scores)."""
    labels = list(labels)
    k = len(labels)

    def stats(preds: Sequence[Any], targets: Sequence[Any]) -> np.ndarray:
        p, t, _ = encode(preds, targets, labels)
        s = np.zeros((t.size, 3 * k))
        rows = np.arange(t.size)
        s[rows, t] = 1.0  # support
        parsed = p < k
        s[rows[parsed], k + p[parsed]] = 1.0  # predicted
        hit = p == t
        s[rows[hit], 2 * k + t[hit]] = 1.0  # true positive
        return s

    def finish(sums: np.ndarray) -> np.ndarray:
        return weighted_f1_from_counts(sums[..., 2 * k :], sums[..., :k], sums[..., k : 2 * k])

    return AdditiveMetric("f1_weighted", stats, finish)
