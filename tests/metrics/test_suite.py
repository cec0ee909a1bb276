"""suite_values() dispatch and primary_metric() agreement with the suites."""

from __future__ import annotations

import math

import numpy as np
import pytest

from affectbench.core.registry import METRIC_SUITES
from affectbench.core.types import DatasetInfo, TaskType
from affectbench.metrics import (
    MER_BINARY_KEY,
    MetricInputError,
    classification_scores,
    mosi_scores,
    primary_metric,
    sims_scores,
    suite_values,
)
from affectbench.metrics.mmsa import MOSI_KEYS, SIMS_KEYS

MOSI = DatasetInfo("mosi", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi")
SIMS = DatasetInfo("sims", TaskType.REGRESSION, score_range=(-1.0, 1.0), metric_suite="sims", language="zh")
MELD = DatasetInfo(
    "meld", TaskType.CLASSIFICATION, labels=("neutral", "joy", "sadness", "anger"), metric_suite="classification"
)
MELD_SENT = DatasetInfo(
    "meld_sentiment",
    TaskType.CLASSIFICATION,
    labels=("negative", "neutral", "positive"),
    metric_suite="classification",
)


def test_registry_targets_resolve() -> None:
    assert METRIC_SUITES.load("mosi") is mosi_scores
    assert METRIC_SUITES.load("sims") is sims_scores
    assert METRIC_SUITES.load("classification") is classification_scores


def test_score_dispatch_and_mer_view() -> None:
    s = suite_values(MOSI, [1.0, None, -2.0], [2.0, 1.0, -1.0])
    assert list(s) == [*MOSI_KEYS, MER_BINARY_KEY]
    assert s["Non0_acc_2"] == 0.6667  # the unread answer is wrong under Non0
    assert s["Has0_acc_2"] == 0.6667  # ... and under Has0 (no credit as a "non-negative" 0.0)
    assert list(suite_values(SIMS, [0.5], [0.4])) == [*SIMS_KEYS, MER_BINARY_KEY]
    m = suite_values(MELD, ["joy", None], ["joy", "anger"])
    assert m["acc"] == 0.5 and MER_BINARY_KEY not in m
    ms = suite_values(MELD_SENT, ["positive", "neutral", "negative"], ["positive", "negative", "neutral"])
    assert ms[MER_BINARY_KEY] == 0.5  # neutral target dropped; the neutral prediction is wrong


def test_nan_predictions_are_unread() -> None:
    s = suite_values(MOSI, [float("nan"), 1.0], [1.0, 1.0])
    assert s["MAE_answered"] == 0.0 and s["coverage"] == 0.5 and s["Has0_acc_2"] == 0.5


def test_all_unread_earns_no_credit_in_any_suite() -> None:
    # issue 12: all-unparsed MOSI predictions scored Non0_acc_2 0.5 when filled with 0.0
    for info, t in ((MOSI, [1.0, -1.0, 2.0, -0.5]), (SIMS, [0.0, -0.2, 0.4, -1.0])):
        s = suite_values(info, [None] * 4, t)
        credit = {k: v for k, v in s.items() if not k.startswith(("MAE", "Corr", "coverage")) and v == v}
        assert all(v == 0.0 for v in credit.values()), (info.corpus, credit)
    m = suite_values(MELD_SENT, [None, None], ["positive", "negative"])
    assert m["acc"] == 0.0 and m["f1_weighted"] == 0.0 and m[MER_BINARY_KEY] == 0.0


def test_empty_inputs_give_nan_for_every_suite() -> None:
    for info in (MOSI, SIMS, MELD, MELD_SENT):
        s = suite_values(info, [], [])
        assert s and all(math.isnan(v) for v in s.values()), info.corpus


def test_unknown_suite_is_a_clear_error() -> None:
    bad = DatasetInfo("x", TaskType.CLASSIFICATION, labels=("a",), metric_suite="bleu")
    with pytest.raises(MetricInputError, match="known suites"):
        suite_values(bad, ["a"], ["a"])


@pytest.mark.parametrize("seed", range(10))
def test_primary_metric_equals_suite_value(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 400))
    t = np.where(rng.random(n) < 0.1, 0.0, rng.choice(np.arange(-6, 7) / 2, n))
    p = np.where(rng.random(n) < 0.2, 0.0, rng.uniform(-3.5, 3.5, n)).tolist()
    p[0] = None
    name, fn = primary_metric(MOSI)
    assert name == "Non0_acc_2"
    assert float(np.round(fn(p, t.tolist()), 4)) == suite_values(MOSI, p, t.tolist())[name]
    ts = np.round(rng.integers(-5, 6, n) * 0.2, 1)
    ps = np.round(rng.uniform(-1.2, 1.2, n), 1)
    name, fn = primary_metric(SIMS)
    assert name == "Mult_acc_2"
    assert float(np.round(fn(ps, ts), 4)) == suite_values(SIMS, ps, ts)[name]
    tc = rng.choice(MELD.labels, n).tolist()
    pc = [x if rng.random() < 0.6 else rng.choice([None, "joy", "other"]) for x in tc]
    name, fn = primary_metric(MELD)
    assert name == "f1_weighted"
    assert float(np.round(fn(pc, tc), 4)) == suite_values(MELD, pc, tc)[name]
