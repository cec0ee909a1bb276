"""MMSA suites vs an independent, plainly written implementation of REFERENCE.md §3."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score

from affectbench.metrics import MetricInputError, mmsa_scores, mosi_scores, sims_scores

# ---------------------------------------------------------------- independent reference


def _r4(x: float) -> float:
    return float(np.round(x, 4))


def _corr(p: list[float], t: list[float]) -> float:
    if len(p) < 2 or len(set(p)) == 1 or len(set(t)) == 1:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(pearsonr(p, t)[0])


def _round_half_even(x: float) -> float:
    return float(np.round(x))  # numpy semantics are the spec: 2.5 -> 2, -0.5 -> -0


def _read(v) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(v)


UNREAD = 2  # a third class for unread answers: never equal to a target class, outside sklearn's `labels`


def ref_mosi(preds: list, labels: list[float]) -> dict[str, float]:
    """MMSA's metricsTop.py written plainly with sklearn; unread answers (issue 12) get no credit."""
    t = [float(v) for v in labels]
    n = len(t)
    read = [_read(v) for v in preds]
    p = [float(v) if r else math.nan for v, r in zip(preds, read, strict=True)]

    def cls(x: float, r: bool, fn) -> int:
        return int(fn(x)) if r else UNREAD

    acc7 = sum(
        r and _round_half_even(min(max(a, -3.0), 3.0)) == _round_half_even(min(max(b, -3.0), 3.0))
        for a, b, r in zip(p, t, read, strict=True)
    )
    acc5 = sum(
        r and _round_half_even(min(max(a, -2.0), 2.0)) == _round_half_even(min(max(b, -2.0), 2.0))
        for a, b, r in zip(p, t, read, strict=True)
    )
    has0_t = [int(b >= 0) for b in t]
    has0_p = [cls(a, r, lambda x: x >= 0) for a, r in zip(p, read, strict=True)]
    non0_t = [int(b > 0) for b in t if b != 0]
    non0_p = [cls(a, r, lambda x: x > 0) for a, b, r in zip(p, t, read, strict=True) if b != 0]
    pa = [a for a, r in zip(p, read, strict=True) if r]
    ta = [b for b, r in zip(t, read, strict=True) if r]
    f1 = lambda yt, yp: f1_score(yt, yp, labels=[0, 1], average="weighted", zero_division=0)  # noqa: E731
    return {
        "Has0_acc_2": _r4(accuracy_score(has0_t, has0_p)),
        "Has0_F1_score": _r4(f1(has0_t, has0_p)),
        "Non0_acc_2": _r4(accuracy_score(non0_t, non0_p)) if non0_t else math.nan,
        "Non0_F1_score": _r4(f1(non0_t, non0_p)) if non0_t else math.nan,
        "Mult_acc_5": _r4(acc5 / n),
        "Mult_acc_7": _r4(acc7 / n),
        "MAE_answered": _r4(sum(abs(a - b) for a, b in zip(pa, ta, strict=True)) / len(pa)) if pa else math.nan,
        "Corr_answered": _r4(_corr(pa, ta)),
        "coverage": _r4(len(pa) / n),
    }


def _sims_class(x: float, edges: list[float]) -> int:
    for i in range(len(edges) - 1):
        if edges[i] < x <= edges[i + 1]:
            return i
    raise AssertionError(x)


def ref_sims(preds: list, labels: list[float]) -> dict[str, float]:
    read = [_read(v) for v in preds]
    p = [min(max(float(v), -1.0), 1.0) if r else math.nan for v, r in zip(preds, read, strict=True)]
    t = [min(max(float(v), -1.0), 1.0) for v in labels]
    n = len(t)
    ms2, ms3, ms5 = [-1.01, 0.0, 1.01], [-1.01, -0.1, 0.1, 1.01], [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01]

    def c(x: float, edges: list[float], r: bool = True) -> int:
        return _sims_class(x, edges) if r else -1

    c2p, c2t = [c(a, ms2, r) for a, r in zip(p, read, strict=True)], [c(b, ms2) for b in t]
    acc3 = sum(c(a, ms3, r) == c(b, ms3) for a, b, r in zip(p, t, read, strict=True))
    acc5 = sum(c(a, ms5, r) == c(b, ms5) for a, b, r in zip(p, t, read, strict=True))
    pa = [a for a, r in zip(p, read, strict=True) if r]
    ta = [b for b, r in zip(t, read, strict=True) if r]
    return {
        "Mult_acc_2": _r4(sum(a == b for a, b in zip(c2p, c2t, strict=True)) / n),
        "Mult_acc_3": _r4(acc3 / n),
        "Mult_acc_5": _r4(acc5 / n),
        "F1_score": _r4(f1_score(c2t, c2p, labels=[0, 1], average="weighted", zero_division=0)),
        "MAE_answered": _r4(sum(abs(a - b) for a, b in zip(pa, ta, strict=True)) / len(pa)) if pa else math.nan,
        "Corr_answered": _r4(_corr(pa, ta)),
        "coverage": _r4(len(pa) / n),
    }


def assert_same(got: dict[str, float], want: dict[str, float]) -> None:
    assert list(got) == list(want)
    for key in want:
        g, w = got[key], want[key]
        if math.isnan(w):
            assert math.isnan(g), (key, g, w)
        elif key == "Corr_answered":  # pearsonr vs corrcoef may differ in the last bit; allow one rounding step
            assert abs(g - w) <= 1.0001e-4, (key, g, w)
        else:
            assert g == w, (key, g, w)


# ---------------------------------------------------------------- random data with edge cases

MOSI_EDGES = [0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 3.0, -3.0, 3.5, -3.5, 5.0, -7.0, 0.4999999, 1e-9, -1e-9]
SIMS_EDGES = [0.0, 0.1, -0.1, 0.7, -0.7, 1.0, -1.0, 1.2, -1.5, 0.1000001, -0.0999999, 0.05, -0.8, 0.2]


def _some_unread(rng: np.random.Generator, preds: list) -> list:
    """About 15% unread answers (None, NaN, inf, a non-number), as a parser hands them over."""
    bad = [None, math.nan, math.inf, "abc"]
    return [bad[int(rng.integers(0, 4))] if rng.random() < 0.15 else x for x in preds]


def _mosi_draw(rng: np.random.Generator, n: int) -> tuple[list, list]:
    labels = np.where(rng.random(n) < 0.3, rng.choice(np.arange(-6, 7) / 2, n), np.round(rng.uniform(-3, 3, n), 4))
    labels = np.where(rng.random(n) < 0.1, 0.0, labels)
    preds = rng.uniform(-4, 4, n)
    preds = np.where(rng.random(n) < 0.4, rng.choice(MOSI_EDGES, n), preds)
    preds = np.where(rng.random(n) < 0.2, np.round(preds), preds).tolist()
    return _some_unread(rng, preds), labels.tolist()


def _sims_draw(rng: np.random.Generator, n: int) -> tuple[list, list]:
    labels = np.round(rng.integers(-5, 6, n) * 0.2, 1)  # SIMS's grid {-1.0, -0.8, ..., 1.0}
    labels = np.where(rng.random(n) < 0.2, np.round(rng.integers(-10, 11, n) * 0.1, 1), labels)
    preds = rng.uniform(-1.3, 1.3, n)
    preds = np.where(rng.random(n) < 0.5, rng.choice(SIMS_EDGES, n), preds)
    preds = np.where(rng.random(n) < 0.2, np.round(preds, 1), preds).tolist()
    return _some_unread(rng, preds), labels.tolist()


@pytest.mark.parametrize("seed", range(40))
def test_mosi_matches_reference_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60)) if seed % 4 else int(rng.integers(200, 800))
    preds, labels = _mosi_draw(rng, n)
    if seed % 10 == 3:
        preds = [preds[0]] * n  # constant predictions
    assert_same(mosi_scores(preds, labels), ref_mosi(preds, labels))
    assert_same(mmsa_scores("MOSEI", preds, labels), ref_mosi(preds, labels))


@pytest.mark.parametrize("seed", range(40))
def test_sims_matches_reference_on_random_data(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(1, 60)) if seed % 4 else int(rng.integers(200, 800))
    preds, labels = _sims_draw(rng, n)
    if seed % 10 == 3:
        preds = [1.7] * n  # constant, and constant again after clipping
    assert_same(sims_scores(preds, labels), ref_sims(preds, labels))
    assert_same(mmsa_scores("simsv2", preds, labels), ref_sims(preds, labels))


# ---------------------------------------------------------------- hand-worked examples


def test_exact_zero_prediction_is_nonnegative_for_has0_but_negative_for_non0() -> None:
    s = mosi_scores([0.0, 0.0], [1.0, 2.0])
    assert s["Has0_acc_2"] == 1.0
    assert s["Non0_acc_2"] == 0.0
    assert s["Non0_F1_score"] == 0.0


def test_non0_drops_zero_labels() -> None:
    s = mosi_scores([1.0, -1.0, -2.0], [0.0, -1.0, 1.0])
    assert s["Non0_acc_2"] == 0.5  # the sample with label 0 is gone
    assert s["Has0_acc_2"] == 0.6667  # label 0 is class "non-negative" and 1.0 >= 0 matches it


def test_half_to_even_in_acc7_and_acc5() -> None:
    assert mosi_scores([2.5], [2.0])["Mult_acc_7"] == 1.0  # 2.5 rounds to 2
    assert mosi_scores([2.5], [3.0])["Mult_acc_7"] == 0.0
    assert mosi_scores([-2.5], [-2.0])["Mult_acc_7"] == 1.0
    assert mosi_scores([0.5, -0.5], [0.0, 0.0])["Mult_acc_7"] == 1.0  # both round to 0
    assert mosi_scores([1.5], [2.0])["Mult_acc_7"] == 1.0  # 1.5 rounds to 2
    assert mosi_scores([2.5], [3.0])["Mult_acc_5"] == 1.0  # clipped to [-2, 2] first
    assert mosi_scores([9.0], [3.0])["Mult_acc_7"] == 1.0  # out of range: clipped


def test_reported_values_round_half_to_even_at_four_decimals() -> None:
    # 1/32 = 0.03125 and 3/32 = 0.09375 are exact ties at the 5th decimal.
    labels = [1.0] * 32
    assert mosi_scores([1.0] + [-1.0] * 31, labels)["Has0_acc_2"] == 0.0312
    assert mosi_scores([1.0] * 3 + [-1.0] * 29, labels)["Has0_acc_2"] == 0.0938


def test_sims_zero_is_negative() -> None:
    assert sims_scores([0.0], [-0.2])["Mult_acc_2"] == 1.0
    assert sims_scores([0.0], [0.2])["Mult_acc_2"] == 0.0
    assert sims_scores([1e-9], [0.2])["Mult_acc_2"] == 1.0


def test_sims_right_closed_boundaries() -> None:
    assert sims_scores([-0.1], [-0.5])["Mult_acc_3"] == 1.0  # -0.1 is in [-1, -0.1]
    assert sims_scores([-0.1], [0.0])["Mult_acc_3"] == 0.0
    assert sims_scores([0.1], [0.0])["Mult_acc_3"] == 1.0  # 0.1 is in (-0.1, 0.1]
    assert sims_scores([0.1000001], [0.0])["Mult_acc_3"] == 0.0
    assert sims_scores([-0.7], [-1.0])["Mult_acc_5"] == 1.0  # -0.7 is in [-1, -0.7]
    assert sims_scores([0.7], [0.4])["Mult_acc_5"] == 1.0  # 0.7 is in (0.1, 0.7]
    assert sims_scores([-3.0], [-1.0])["Mult_acc_5"] == 1.0  # clipped


def test_sims_mae_on_clipped_values() -> None:
    assert sims_scores([2.0, -2.0], [1.0, -0.5])["MAE_answered"] == 0.25


def test_constant_predictions_corr_nan_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(mosi_scores([1.0, 1.0, 1.0], [0.5, 1.0, 2.0])["Corr_answered"])
        assert math.isnan(sims_scores([3.0, 2.0], [0.5, 1.0])["Corr_answered"])  # constant after clipping
        assert math.isnan(mosi_scores([1.0], [2.0])["Corr_answered"])
        assert math.isnan(mosi_scores([1.0, 2.0], [0.0, 0.0])["Corr_answered"])


def test_empty_inputs_give_nan() -> None:
    for scores in (mosi_scores([], []), sims_scores([], [])):
        assert scores and all(math.isnan(v) for v in scores.values())


def test_all_zero_labels_make_non0_nan() -> None:
    s = mosi_scores([1.0, -1.0], [0.0, 0.0])
    assert math.isnan(s["Non0_acc_2"]) and math.isnan(s["Non0_F1_score"])
    assert s["Has0_acc_2"] == 0.5


def test_unread_predictions_earn_no_credit() -> None:
    # issue 12: all-unread answers scored Non0_acc_2 0.5 and Has0 credit when filled with 0.0
    t = [1.0, -1.0, 2.0, -2.0]
    got = mosi_scores([None, math.nan, "abc", math.inf], t)
    for key in ("Has0_acc_2", "Has0_F1_score", "Non0_acc_2", "Non0_F1_score", "Mult_acc_5", "Mult_acc_7"):
        assert got[key] == 0.0, key
    assert math.isnan(got["MAE_answered"]) and math.isnan(got["Corr_answered"]) and got["coverage"] == 0.0
    s = sims_scores([None, None, None], [0.0, -0.2, 0.6])  # 0.0 would be right for the first two
    assert s["Mult_acc_2"] == s["Mult_acc_3"] == s["Mult_acc_5"] == s["F1_score"] == 0.0


def test_answered_views_ignore_unread() -> None:
    s = mosi_scores([1.0, None, -1.0], [2.0, 3.0, -2.0])
    assert s["MAE_answered"] == 1.0 and s["coverage"] == 0.6667
    assert s["Has0_acc_2"] == 0.6667  # the unread answer is wrong, not "non-negative"


def test_weighted_f1_with_unread_matches_sklearn_sentinel() -> None:
    rng = np.random.default_rng(7)
    t = rng.choice([-2.0, -1.0, 1.0, 2.0], 300).tolist()
    p = [None if rng.random() < 0.3 else float(x) for x in rng.uniform(-3, 3, 300)]
    yt = [int(x >= 0) for x in t]
    yp = [2 if x is None else int(x >= 0) for x in p]
    want = f1_score(yt, yp, labels=[0, 1], average="weighted")
    assert mosi_scores(p, t)["Has0_F1_score"] == _r4(want)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(MetricInputError, match="finite"):
        mosi_scores([1.0], [float("nan")])
    with pytest.raises(MetricInputError, match="2 predictions for 1 targets"):
        mosi_scores([1.0, 2.0], [1.0])
    with pytest.raises(MetricInputError, match="mosi, mosei, sims, simsv2"):
        mmsa_scores("meld", [1.0], [1.0])


def test_dataset_names_are_case_insensitive() -> None:
    assert_same(mmsa_scores("CMU-MOSI", [1.0, -1.0], [1.0, 1.0]), mosi_scores([1.0, -1.0], [1.0, 1.0]))
    assert_same(mmsa_scores("SIMS", [0.5, -0.3], [0.5, 0.2]), sims_scores([0.5, -0.3], [0.5, 0.2]))
    assert_same(mmsa_scores("ch-sims", [0.5, -0.3], [0.5, 0.2]), sims_scores([0.5, -0.3], [0.5, 0.2]))
