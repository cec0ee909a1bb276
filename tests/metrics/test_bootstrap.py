"""Bootstrap intervals and the paired bootstrap test."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from affectbench.core.types import DatasetInfo, TaskType
from affectbench.metrics import MetricInputError, bootstrap_ci, paired_bootstrap, primary_metric

MOSI = DatasetInfo("mosi", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi")
MELD = DatasetInfo("meld", TaskType.CLASSIFICATION, labels=("neutral", "joy", "anger"), metric_suite="classification")


def _regression(n: int, noise: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = rng.uniform(-3, 3, n)
    return t + rng.normal(0, noise, n), t


def test_ci_contains_point_and_is_deterministic() -> None:
    p, t = _regression(400, 1.5)
    _, fn = primary_metric(MOSI)
    ci = bootstrap_ci(fn, p, t, n=500, seed=3)
    assert ci.lo < ci.point < ci.hi and ci.n == 500
    assert bootstrap_ci(fn, p, t, n=500, seed=3) == ci
    assert bootstrap_ci(fn, p, t, n=500, seed=4) != ci
    assert 0.02 < ci.hi - ci.lo < 0.2  # roughly 4 standard errors of a proportion near 0.8 on 400 samples


def test_fast_path_equals_generic_callable() -> None:
    rng = np.random.default_rng(1)
    t = rng.choice(MELD.labels, 300).tolist()
    p = [x if rng.random() < 0.6 else rng.choice([None, "joy", "anger"]) for x in t]
    groups = [i // 4 for i in range(300)]
    _, fn = primary_metric(MELD)
    fast = bootstrap_ci(fn, p, t, groups=groups, n=200, seed=7)
    slow = bootstrap_ci(lambda a, b: fn(list(a), list(b)), p, t, groups=groups, n=200, seed=7)
    assert fast.point == slow.point and fast.n == slow.n == 200
    assert fast.lo == pytest.approx(slow.lo, abs=1e-12) and fast.hi == pytest.approx(slow.hi, abs=1e-12)


def test_grouped_resampling_keeps_groups_together() -> None:
    # targets carry (group, member) ids; the metric returns 1.0 only if every drawn group
    # appears with all its members equally often -- i.e. whole groups were resampled.
    sizes = [1, 2, 3, 5, 8]
    ids = [(g, m) for g, size in enumerate(sizes) for m in range(size)]
    groups = [g for g, _ in ids]

    def whole_groups(preds: np.ndarray, targets: np.ndarray) -> float:
        counts = Counter(tuple(x) for x in targets)
        for g, size in enumerate(sizes):
            member_counts = {counts.get((g, m), 0) for m in range(size)}
            if len(member_counts) != 1:
                return 0.0
        return 1.0

    targets = np.array(ids)
    grouped = bootstrap_ci(whole_groups, np.zeros(len(ids)), targets, groups=groups, n=100, seed=0)
    assert grouped.lo == grouped.hi == 1.0
    ungrouped = bootstrap_ci(whole_groups, np.zeros(len(ids)), targets, n=100, seed=0)
    assert ungrouped.lo == 0.0  # sample-level resampling splits groups


def test_grouped_interval_is_wider_for_clustered_errors() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 25)
    t = rng.uniform(0.5, 3, 1000)
    group_good = rng.random(40) < 0.7
    p = np.where(group_good[groups], t, -t)  # whole videos right or wrong
    _, fn = primary_metric(MOSI)
    plain = bootstrap_ci(fn, p, t, n=400)
    clustered = bootstrap_ci(fn, p, t, groups=groups, n=400)
    assert clustered.hi - clustered.lo > 2 * (plain.hi - plain.lo)


def test_paired_identical_runs() -> None:
    p, t = _regression(300, 1.0)
    _, fn = primary_metric(MOSI)
    r = paired_bootstrap(fn, p, p.copy(), t, n=300)
    assert r.delta == 0.0 and r.lo == 0.0 and r.hi == 0.0
    assert r.p_value == 1.0 and r.b_better_frac == 0.0


def test_paired_clearly_different_runs() -> None:
    bad, t = _regression(500, 3.0, seed=1)
    good = t + np.random.default_rng(2).normal(0, 0.3, 500)
    _, fn = primary_metric(MOSI)
    r = paired_bootstrap(fn, bad, good, t, groups=np.arange(500) // 5, n=500, seed=0)
    assert r.delta > 0.1 and r.lo > 0 and r.hi >= r.lo
    assert r.p_value < 0.01 and r.b_better_frac == 1.0
    assert r.delta == pytest.approx(r.point_b - r.point_a)
    flipped = paired_bootstrap(fn, good, bad, t, groups=np.arange(500) // 5, n=500, seed=0)
    assert flipped.delta == -r.delta and flipped.hi < 0 and flipped.b_better_frac == 0.0
    assert paired_bootstrap(fn, bad, good, t, n=200, seed=5) == paired_bootstrap(fn, bad, good, t, n=200, seed=5)


def test_nan_replicates_left_out_and_empty_input() -> None:
    # one non-zero label in 10: some replicates draw none, so Non0_acc_2 is NaN there
    t = np.array([1.0] + [0.0] * 9)
    p = np.ones(10)
    _, fn = primary_metric(MOSI)
    ci = bootstrap_ci(fn, p, t, n=200)
    assert 0 < ci.n < 200 and ci.undefined == pytest.approx(1 - ci.n / 200)
    # 1 of 1 non-zero label right: a proportion at the boundary gets the exact interval, not [1, 1]
    assert ci.method == "clopper-pearson" and ci.hi == 1.0 and ci.lo == pytest.approx(0.025)
    empty = bootstrap_ci(fn, [], [], n=10)
    assert math.isnan(empty.point) and empty.n == 0


def test_bad_arguments() -> None:
    _, fn = primary_metric(MOSI)
    with pytest.raises(MetricInputError):
        bootstrap_ci(fn, [1.0], [1.0, 2.0])
    with pytest.raises(MetricInputError):
        bootstrap_ci(fn, [1.0], [1.0], groups=["a", "b"])
    with pytest.raises(MetricInputError):
        bootstrap_ci(fn, [1.0], [1.0], alpha=1.5)
