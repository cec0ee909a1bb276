"""Paired permutation test and Holm correction against scipy and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import permutation_test
from statsmodels.stats.multitest import multipletests

from affectbench.core.types import DatasetInfo, TaskType
from affectbench.metrics.additive import f1_weighted
from affectbench.metrics.permutation import holm, paired_permutation

LABELS = ("neg", "neu", "pos")


def _scipy_p(metric, a, b, t, n_resamples=np.inf, seed=0):
    """scipy's paired ('samples') permutation test of metric(b) − metric(a), two-sided. Each sample's
    two answers sit in one table (a's at i, b's at n + i), so scipy swapping x_i and y_i swaps them."""
    n = len(t)
    answers, targets = list(a) + list(b), list(t) + list(t)

    def stat(x, y, axis=-1):
        x, y = np.atleast_2d(x).astype(int), np.atleast_2d(y).astype(int)
        return np.array(
            [
                metric([answers[i] for i in yi], [targets[i] for i in yi])
                - metric([answers[i] for i in xi], [targets[i] for i in xi])
                for xi, yi in zip(x, y, strict=True)
            ]
        )

    res = permutation_test(
        (np.arange(n), np.arange(n) + n),
        stat,
        permutation_type="samples",
        vectorized=True,
        n_resamples=n_resamples,
        alternative="two-sided",
        random_state=seed,
    )
    return res.pvalue, res.statistic


def _data(seed, n):
    rng = np.random.default_rng(seed)
    t = rng.choice(LABELS, n).tolist()
    a = [x if rng.random() < 0.5 else str(rng.choice(LABELS)) for x in t]
    b = [x if rng.random() < 0.7 else (None if rng.random() < 0.2 else str(rng.choice(LABELS))) for x in t]
    return a, b, t


@pytest.mark.parametrize("seed", range(4))
def test_exact_p_equals_scipy_exact(seed):
    acc = lambda p, t: float(np.mean([x == y for x, y in zip(p, t, strict=True)]))  # noqa: E731
    a, b, t = _data(seed, 11)
    for metric in (acc, f1_weighted(LABELS)):
        got = paired_permutation(metric, a, b, t, n_resamples=10**6)
        want, delta = _scipy_p(metric, a, b, t)
        assert got.exact and got.delta == pytest.approx(delta)
        assert got.p_value == pytest.approx(want, abs=1e-12)


def test_random_p_is_close_to_the_exact_one():
    a, b, t = _data(7, 40)
    metric = f1_weighted(LABELS)
    exact = paired_permutation(metric, a, b, t, n_resamples=2**40)
    assert exact.exact
    approx = paired_permutation(metric, a, b, t, n_resamples=4000, seed=1)
    assert not approx.exact and approx.n_resamples == 4000
    assert abs(approx.p_value - exact.p_value) < 0.03  # Monte Carlo error at 4000 draws: sd <= 0.008


def test_identical_runs_give_p_one_and_a_clear_gain_a_small_p():
    t = ["pos", "neg"] * 20
    same = paired_permutation(f1_weighted(LABELS), t, t, t)
    assert same.delta == 0 and same.p_value == 1.0
    wrong = ["neu"] * 40
    clear = paired_permutation(f1_weighted(LABELS), wrong, t, t, n_resamples=999)
    assert clear.p_value == pytest.approx(1 / 1000)


def test_holm_matches_statsmodels():
    rng = np.random.default_rng(3)
    for m in (1, 2, 5, 12):
        p = rng.uniform(0, 0.2, m).tolist()
        want = multipletests(p, alpha=0.05, method="holm")[1]
        assert holm(p) == pytest.approx(list(want))
    assert holm([0.01, None, 0.04]) == pytest.approx([0.02, None, 0.04])


def test_primary_metric_is_the_f1_used_here():
    from affectbench.metrics import primary_metric

    name, fn = primary_metric(DatasetInfo("x", TaskType.CLASSIFICATION, labels=LABELS))
    assert name == "f1_weighted" and fn(["neg"], ["neg"]) == 1.0
