"""Intervals at the boundary (exact / Wilson, checked against scipy) and the share of undefined
bootstrap replicates reported next to every interval."""

import numpy as np
import pytest
from scipy.stats import binomtest

from affectbench.metrics.additive import accuracy, non0_acc2, recall
from affectbench.metrics.bootstrap import (
    UNDEFINED_WARN,
    bootstrap_ci,
    exact_interval,
    paired_bootstrap,
    wilson_interval,
)

CASES = [(0, 1), (0, 10), (10, 10), (1, 10), (5, 10), (9, 10), (0, 37), (37, 37), (3, 250), (611, 1000)]


@pytest.mark.parametrize(("k", "n"), CASES)
@pytest.mark.parametrize("alpha", [0.05, 0.1])
def test_exact_and_wilson_intervals_match_scipy(k, n, alpha):
    ref = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="exact")
    assert exact_interval(k, n, alpha) == pytest.approx((ref.low, ref.high), abs=1e-9)
    ref = binomtest(k, n).proportion_ci(confidence_level=1 - alpha, method="wilson")
    assert wilson_interval(k, n, alpha) == pytest.approx((ref.low, ref.high), abs=1e-9)


def test_ten_of_ten_correct_gets_an_exact_interval_not_a_zero_width_one():
    preds = targets = [1.0, -1.0] * 5
    ci = bootstrap_ci(non0_acc2(), preds, targets, n=200)
    ref = binomtest(10, 10).proportion_ci(method="exact")
    assert ci.point == 1.0 and ci.method == "clopper-pearson"
    assert (ci.lo, ci.hi) == pytest.approx((ref.low, ref.high))
    assert ci.hi - ci.lo > 0.25
    labels = ["a", "b"]
    ci = bootstrap_ci(accuracy(labels), ["a", "b", "a"], ["a", "b", "a"], n=100)
    assert ci.method == "clopper-pearson" and ci.lo == pytest.approx(binomtest(3, 3).proportion_ci().low)


def test_a_class_never_predicted_has_recall_zero_with_an_exact_upper_bound():
    labels = ["sarcastic", "sincere"]
    targets = ["sarcastic"] * 8 + ["sincere"] * 12
    preds = ["sincere"] * 20  # sarcastic is never predicted
    ci = bootstrap_ci(recall(labels, "sarcastic"), preds, targets, n=300)
    assert ci.point == 0.0 and ci.lo == 0.0
    assert ci.hi == pytest.approx(binomtest(0, 8).proportion_ci(method="exact").high)


def test_an_interior_proportion_keeps_its_percentile_bootstrap_interval():
    rng = np.random.default_rng(0)
    t = [float(x) for x in rng.choice([-1.0, 1.0], 60)]
    p = [x if rng.random() < 0.7 else -x for x in t]
    ci = bootstrap_ci(non0_acc2(), p, t, n=300)
    assert ci.method == "percentile" and ci.lo < ci.point < ci.hi and ci.undefined == 0.0 and ci.warning is None


def test_undefined_replicates_are_counted_and_warned_above_five_percent():
    targets = [0.0] * 19 + [1.0]  # one non-zero label: a draw without it leaves Non0 undefined
    preds = [1.0] * 20
    ci = bootstrap_ci(non0_acc2(), preds, targets, n=1000)
    expected = (19 / 20) ** 20  # P(the one non-zero sample is never drawn) ≈ 0.358
    assert ci.requested == 1000 and ci.undefined == pytest.approx(expected, abs=0.05)
    assert ci.undefined > UNDEFINED_WARN and "undefined" in ci.warning
    res = paired_bootstrap(non0_acc2(), preds, [-1.0] * 20, targets, n=1000)
    assert res.undefined == pytest.approx(ci.undefined, abs=1e-9) and res.warning
