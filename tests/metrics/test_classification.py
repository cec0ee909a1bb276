"""Classification scores, confusion matrix and the MER binary view vs sklearn and hand examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score
from sklearn.metrics import confusion_matrix as sk_confusion

from affectbench.metrics import (
    MER_BINARY_KEY,
    MetricInputError,
    classification_scores,
    confusion_matrix,
    mer_binary_scores,
    mer_binary_waf,
    mosi_scores,
)

LABELS = ["neutral", "joy", "sadness", "anger", "surprise", "fear", "disgust"]
SENTINEL = "__unparsed__"


def ref_classification(preds: list, targets: list, labels: list[str]) -> dict[str, float]:
    p = [x if x in labels else SENTINEL for x in preds]
    present = [lab for lab in labels if lab in targets or lab in p]
    out = {
        "acc": float(np.round(sum(a == b for a, b in zip(p, targets, strict=True)) / len(targets), 4)),
        # UA: sklearn's balanced accuracy (mean recall over the classes present in the targets)
        "ua": float(np.round(balanced_accuracy_score(targets, p), 4)),
        "f1_weighted": float(np.round(f1_score(targets, p, labels=labels, average="weighted", zero_division=0), 4)),
        "f1_macro": float(np.round(f1_score(targets, p, labels=present, average="macro", zero_division=0), 4)),
    }
    for lab in labels:
        if lab in targets:
            out[f"recall/{lab}"] = float(np.round(recall_score(targets, p, labels=[lab], average="macro"), 4))
        else:
            out[f"recall/{lab}"] = math.nan
    return out


@pytest.mark.parametrize("seed", range(30))
def test_matches_sklearn_on_random_data_with_unparsed(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    k = int(rng.integers(2, len(LABELS) + 1))
    labels = LABELS[:k]
    weights = rng.dirichlet(np.ones(k))
    targets = rng.choice(labels, n, p=weights).tolist()
    preds: list = [t if rng.random() < 0.5 else str(rng.choice(labels)) for t in targets]
    for i in np.flatnonzero(rng.random(n) < 0.1):
        preds[i] = [None, "Joy", "banana", float("nan")][int(rng.integers(0, 4))]
    got = classification_scores(preds, targets, labels)
    want = ref_classification(preds, targets, labels)
    assert list(got) == list(want)
    for key in want:
        assert (math.isnan(got[key]) and math.isnan(want[key])) or got[key] == want[key], (key, got[key], want[key])
    cm = confusion_matrix(preds, targets, labels)
    p_sent = [x if x in labels else SENTINEL for x in preds]
    assert (cm == sk_confusion(targets, p_sent, labels=[*labels, SENTINEL])[:k]).all()


def test_hand_example_with_unparsed() -> None:
    preds = ["a", None, "zz", "b", "b"]
    targets = ["a", "a", "b", "b", "a"]
    s = classification_scores(preds, targets, ["a", "b", "c"])
    assert s["acc"] == 0.4
    # a: tp 1, support 3, predicted 1 -> F1 0.5; b: tp 1, support 2, predicted 2 -> F1 0.5
    assert s["f1_weighted"] == 0.5
    assert s["f1_macro"] == 0.5  # c never occurs: excluded from the macro average
    assert s["recall/a"] == 0.3333 and s["recall/b"] == 0.5
    assert s["ua"] == round((1 / 3 + 1 / 2) / 2, 4)  # c has no true sample: not averaged
    assert math.isnan(s["recall/c"])
    cm = confusion_matrix(preds, targets, ["a", "b", "c"])
    assert cm.tolist() == [[1, 1, 0, 1], [0, 1, 0, 1], [0, 0, 0, 0]]


def test_all_unparsed_scores_zero() -> None:
    s = classification_scores([None, None], ["a", "b"], ["a", "b"])
    assert s["acc"] == 0.0 and s["f1_weighted"] == 0.0 and s["f1_macro"] == 0.0


def test_empty_and_errors() -> None:
    s = classification_scores([], [], ["a", "b"])
    assert set(s) == {"acc", "ua", "f1_weighted", "f1_macro", "recall/a", "recall/b"}
    assert all(math.isnan(v) for v in s.values())
    with pytest.raises(MetricInputError, match="not one of the labels"):
        classification_scores(["a"], ["x"], ["a", "b"])
    with pytest.raises(MetricInputError, match="duplicates"):
        classification_scores(["a"], ["a"], ["a", "a"])
    with pytest.raises(MetricInputError, match="1 predictions for 2 targets"):
        classification_scores(["a"], ["a", "b"], ["a", "b"])


# ---------------------------------------------------------------- MER-UniBench binary view


def test_mer_binary_regression_drops_neutral_and_exact_zero_pred_is_wrong() -> None:
    # labels: 0 dropped; remaining truth [pos, neg, pos]; preds [pos, neg, 0 -> non-polar]
    waf = mer_binary_waf([1.0, 0.5, -1.0, 0.0], [0.0, 2.0, -1.0, 1.0])
    # pos: tp 1, support 2, predicted 1 -> 2/3; neg: tp 1, support 1, predicted 1 -> 1.0
    assert waf == pytest.approx((2 * 2 / 3 + 1 * 1.0) / 3)
    # MMSA's Non0 F1 calls the exact 0 negative instead: a different number, a different name.
    assert mosi_scores([1.0, 0.5, -1.0, 0.0], [0.0, 2.0, -1.0, 1.0])["Non0_F1_score"] == 0.6667
    assert mer_binary_scores([1.0], [1.0]) == {MER_BINARY_KEY: 1.0}


def test_mer_binary_labels_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    targets = rng.choice(["positive", "negative", "neutral"], 200).tolist()
    preds = rng.choice(["positive", "negative", "neutral", "Positive", None], 200).tolist()
    keep = [i for i, t in enumerate(targets) if t != "neutral"]
    t = [targets[i] for i in keep]
    p = [str(preds[i]).lower() if str(preds[i]).lower() in ("positive", "negative") else "x" for i in keep]
    want = f1_score(t, p, labels=["negative", "positive"], average="weighted")
    assert mer_binary_waf(preds, targets) == pytest.approx(want, abs=1e-12)


def test_mer_binary_edge_cases() -> None:
    assert math.isnan(mer_binary_waf([1.0, -1.0], [0.0, 0.0]))
    assert mer_binary_waf([None, float("nan")], [1.0, -1.0]) == 0.0
    with pytest.raises(MetricInputError, match="sentiment targets"):
        mer_binary_waf(["joy"], ["joy"])


def test_unhashable_prediction_is_unparsed() -> None:
    s = classification_scores([["a"], "b"], ["a", "b"], ["a", "b"])
    assert s["acc"] == 0.5 and s["recall/a"] == 0.0 and s["recall/b"] == 1.0


def test_macro_f1_is_not_sklearn_with_all_labels_but_ua_is_macro_recall() -> None:
    """The docstring's claims, checked against sklearn: macro F1 leaves out never-seen labels
    (sklearn's labels=labels would count them as 0); UA = recall_score(average="macro") over the
    labels that occur as targets = balanced_accuracy_score."""
    labels = ["a", "b", "c"]
    targets, preds = ["a", "a", "b", "b", "a"], ["a", "zz", "b", "b", "b"]
    p = [x if x in labels else SENTINEL for x in preds]
    s = classification_scores(preds, targets, labels)
    with_all = f1_score(targets, p, labels=labels, average="macro", zero_division=0)
    assert s["f1_macro"] != round(with_all, 4)
    assert s["f1_macro"] == round(f1_score(targets, p, labels=["a", "b"], average="macro"), 4)
    assert s["ua"] == round(recall_score(targets, p, labels=["a", "b"], average="macro"), 4)
    assert s["ua"] == round(balanced_accuracy_score(targets, p), 4)
