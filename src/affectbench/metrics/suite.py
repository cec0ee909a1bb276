"""Dispatch from a dataset's `metric_suite` to its scores and its headline number.

``score`` policy: an unread prediction (None, NaN, non-numeric, or a label outside the set)
earns no credit in any suite — wrong in every accuracy and F1; regression suites compute MAE and
Pearson r on answered samples only, named ``MAE_answered``/``Corr_answered`` next to their
``coverage``. Sentiment datasets
also get ``MER_binary_WAF`` (MER-UniBench's view, see ``mer``), under that name only.
Empty inputs give every key as NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core.types import DatasetInfo
from ._common import MetricInputError, round4
from .additive import AdditiveMetric, f1_weighted, non0_acc2, sims_acc2
from .classification import classification_scores
from .mer import MER_BINARY_KEY, mer_binary_waf
from .mmsa import mosi_scores, sims_scores

SUITES = ("mosi", "sims", "classification")


def _suite(info: DatasetInfo) -> str:
    suite = (info.metric_suite or "").lower()
    if suite not in SUITES:
        raise MetricInputError(
            f"dataset {info.corpus!r} names metric suite {info.metric_suite!r}; known suites: {', '.join(SUITES)}"
        )
    return suite


def has_binary_sentiment_view(info: DatasetInfo) -> bool:
    """True for regression sentiment suites and for label sets with positive and negative."""
    if _suite(info) in ("mosi", "sims"):
        return True
    folded = {str(lab).lower() for lab in info.labels}
    return {"positive", "negative"} <= folded and folded <= {"positive", "negative", "neutral"}


def suite_values(info: DatasetInfo, preds: Sequence[Any], targets: Sequence[Any]) -> dict[str, float]:
    """All numbers of `info`'s metric suite (4 decimals), plus MER_binary_WAF for sentiment."""
    suite = _suite(info)
    if suite == "mosi":
        out = mosi_scores(preds, targets)
    elif suite == "sims":
        out = sims_scores(preds, targets)
    else:
        out = classification_scores(preds, targets, info.labels)
    if has_binary_sentiment_view(info):
        out[MER_BINARY_KEY] = round4(mer_binary_waf(preds, targets))
    return out


def primary_metric(info: DatasetInfo) -> tuple[str, AdditiveMetric]:
    """(key, fast callable) of the headline number: mosi Non0_acc_2, sims Mult_acc_2, else f1_weighted.

    The callable returns the suite's value before rounding and exposes ``stats``/``finish``,
    which ``bootstrap_ci`` and ``paired_bootstrap`` use to evaluate all replicates at once.
    """
    suite = _suite(info)
    metric = non0_acc2() if suite == "mosi" else sims_acc2() if suite == "sims" else f1_weighted(info.labels)
    return metric.name, metric
