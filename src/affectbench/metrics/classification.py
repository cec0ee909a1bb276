"""Classification scores: accuracy (WA), UA, weighted/macro F1, per-class recall, confusion matrix.

Unparsed predictions: ``None``, NaN and any value that is not one of `labels` (matched
exactly; synonym and case folding is the parser's job) form an extra "unparsed" class. It is
never equal to a target, so it counts as wrong for accuracy and recall, and as a false
negative of the true class for F1; it is not a member of the averaging set, so it gets no F1
of its own. With unparsed predictions mapped to a sentinel outside `labels`:
``f1_weighted`` equals ``sklearn.metrics.f1_score(t, p, labels=labels, average="weighted")``;
``f1_macro`` does NOT equal sklearn's ``labels=labels`` macro F1 (which counts labels that never
occur as F1 = 0) but ``f1_score(t, p, labels=<labels occurring as target or parsed prediction>,
average="macro")``; ``ua`` equals ``sklearn.metrics.balanced_accuracy_score(t, p)``.

- ``acc``: correct / n (IEMOCAP papers call it WA, weighted accuracy).
- ``ua``: unweighted average recall, the mean of per-class recall over the labels that occur as
  a target (IEMOCAP's UA).
- ``f1_weighted``: per-class F1 averaged with weights = true support over `labels` (the
  MELD/IEMOCAP/MUStARD norm).
- ``f1_macro``: unweighted mean of per-class F1 over the labels that occur as a target or as
  a (parsed) prediction -- sklearn's default label set with the unparsed class left out.
  Labels that never occur are excluded rather than counted as F1 = 0.
- ``recall/<label>``: TP / support; NaN for a label with no true samples.

Targets must all be in `labels` (otherwise MetricInputError). Empty inputs give NaN values.
Values are rounded to 4 decimals (half-to-even), like the MMSA suites.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from ._common import NAN, MetricInputError, check_lengths, f1_per_class, round4, safe_div, weighted_f1_from_counts


def label_index(labels: Sequence[Any]) -> dict[Any, int]:
    index = {lab: i for i, lab in enumerate(labels)}
    if len(index) != len(labels):
        raise MetricInputError(f"labels {list(labels)} contain duplicates; pass each class name once")
    if not index:
        raise MetricInputError("labels is empty; a classification metric needs the list of class names")
    return index


def _codes(values: Sequence[Any], index: dict[Any, int], missing: int) -> np.ndarray:
    """index[x] for each value, `missing` for values not in `index` (unhashable ones included)."""
    get = index.get
    try:
        return np.array([get(x, missing) for x in values], dtype=np.intp)
    except TypeError:  # an unhashable value (list, dict): slow path
        return np.array([get(x, missing) if isinstance(x, Hashable) else missing for x in values], dtype=np.intp)


def encode(preds: Sequence[Any], targets: Sequence[Any], labels: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """(pred codes, target codes, K): codes index `labels`; unparsed predictions get code K."""
    check_lengths(preds, targets)
    index = label_index(labels)
    k = len(index)
    t = _codes(targets, index, -1)
    if t.size and t.min() < 0:
        i = int(np.flatnonzero(t < 0)[0])
        raise MetricInputError(
            f"target #{i} is {list(targets)[i]!r}, which is not one of the labels {list(labels)}; "
            "fix the dataset's label or its label set"
        )
    return _codes(preds, index, k), t, k


def counts(p: np.ndarray, t: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(TP, support, predicted) per class over `k` labels; code k (unparsed) is dropped."""
    support = np.bincount(t, minlength=k)[:k]
    predicted = np.bincount(p, minlength=k + 1)[:k]
    tp = np.bincount(t[p == t], minlength=k)[:k]
    return tp, support, predicted


def confusion_matrix(preds: Sequence[Any], targets: Sequence[Any], labels: Sequence[Any]) -> np.ndarray:
    """Counts with rows = true label, columns = predicted label, plus a last column for unparsed."""
    p, t, k = encode(preds, targets, labels)
    return np.bincount(t * (k + 1) + p, minlength=k * (k + 1)).reshape(k, k + 1)


def classification_raw(p: np.ndarray, t: np.ndarray, labels: Sequence[Any]) -> dict[str, float]:
    """Unrounded scores from codes (see `encode`)."""
    k = len(labels)
    keys = ["acc", "ua", "f1_weighted", "f1_macro", *(f"recall/{lab}" for lab in labels)]
    if t.size == 0:
        return dict.fromkeys(keys, NAN)
    tp, support, predicted = counts(p, t, k)
    f1 = f1_per_class(tp, support, predicted)
    present = (support + predicted) > 0
    recall = safe_div(tp, support)
    out = {
        "acc": float(tp.sum() / t.size),
        "ua": float(recall[support > 0].mean()),
        "f1_weighted": float(weighted_f1_from_counts(tp, support, predicted)),
        "f1_macro": float(f1[present].mean()) if present.any() else NAN,
    }
    out.update({f"recall/{lab}": float(r) for lab, r in zip(labels, recall, strict=True)})
    return out


def classification_scores(
    preds: Sequence[str | None], targets: Sequence[str], labels: Sequence[str]
) -> dict[str, float]:
    """acc, f1_weighted, f1_macro and recall/<label>, rounded to 4 decimals."""
    p, t, _ = encode(preds, targets, labels)
    return {key: round4(v) for key, v in classification_raw(p, t, list(labels)).items()}
