import numpy as np
import pytest

from affectbench.analysis.stats import rankdata, spearman, spearman_ci


def test_rankdata_averages_ties():
    assert rankdata([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman_known_cases():
    assert spearman([1, 2, 3, 4, 5], [2, 4, 6, 8, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4, 5], [5, 4, 3, 2, 1]) == pytest.approx(-1.0)
    # hand computed: d = rank differences (0, 0, -1, 1, 0) -> rho = 1 - 6*2/(5*24) = 0.9
    assert spearman([1, 2, 3, 4, 5], [1, 2, 4, 3, 5]) == pytest.approx(0.9)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_spearman_matches_scipy_with_ties():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 40), rng.integers(0, 5, 40)
    assert spearman(x, y) == pytest.approx(scipy_stats.spearmanr(x, y).statistic)


def test_spearman_ci_brackets_the_point_and_drops_missing():
    x = list(range(30)) + [None]
    y = [v + (3 if v % 4 == 0 else 0) for v in range(30)] + [1.0]
    ci = spearman_ci(x, y, n_boot=300)
    assert ci.n == 30
    assert ci.lo <= ci.point <= ci.hi and ci.point > 0.9 and ci.excludes_zero()


def test_metric_replicates_use_the_draws_of_paired_bootstrap():
    from affectbench.analysis.stats import metric_replicates, percentile_interval
    from affectbench.core.types import DatasetInfo, TaskType
    from affectbench.metrics import paired_bootstrap, primary_metric

    info = DatasetInfo("e", TaskType.CLASSIFICATION, labels=("a", "b", "c"))
    _, fn = primary_metric(info)
    rng = np.random.default_rng(1)
    targets = list(rng.choice(["a", "b", "c"], 60))
    pa = [t if rng.random() < 0.5 else "a" for t in targets]
    pb = [t if rng.random() < 0.8 else None for t in targets]
    groups = [f"g{i // 3}" for i in range(60)]
    points, reps = metric_replicates(fn, [pa, pb], targets, groups, 200, 7)
    assert reps.shape == (200, 2)
    res = paired_bootstrap(fn, pa, pb, targets, groups=groups, n=200, seed=7)
    ci = percentile_interval(points[1] - points[0], reps[:, 1] - reps[:, 0], 60)
    assert ci.point == pytest.approx(res.delta) and (ci.lo, ci.hi) == pytest.approx((res.lo, res.hi))
