import math

import pytest

from affectbench.analysis.dataset_props import (
    agreement_strata,
    dataset_properties,
    duration_strata,
    label_entropy,
    unimodal_agreement,
)
from affectbench.core.types import DatasetInfo, Sample, TaskType

EMO = DatasetInfo("emo", TaskType.CLASSIFICATION, labels=("happy", "sad", "angry", "neutral"))
SIMS = DatasetInfo("sims", TaskType.REGRESSION, score_range=(-1, 1), metric_suite="sims", language="zh")


def test_entropy_and_imbalance_on_hand_made_labels():
    labels = ["happy"] * 4 + ["sad"] * 2 + ["angry"] * 2  # neutral empty
    samples = [Sample(id=str(i), transcript="a b c", target=t, speaker=f"s{i % 3}") for i, t in enumerate(labels)]
    p = dataset_properties(EMO, samples)
    assert p.n_classes == 4 and p.class_counts == {"happy": 4, "sad": 2, "angry": 2, "neutral": 0}
    assert p.label_entropy == pytest.approx(1.5)  # -(.5 log .5 + 2 * .25 log .25)
    assert p.label_entropy_norm == pytest.approx(0.75)
    assert p.imbalance_ratio == pytest.approx(2.0)
    assert p.n_speakers == 3
    assert p.transcript_length.mean == 3


def test_balanced_entropy_is_log2_k():
    assert label_entropy({"a": 5, "b": 5, "c": 5, "d": 5}) == pytest.approx(2.0)


def test_durations_from_probe_meta_and_span():
    samples = [
        Sample(id="a", transcript="", target="happy", meta={"duration": 2.0}),
        Sample(id="b", transcript="", target="sad", span=(1.0, 5.0)),
        Sample(id="c", transcript="", target="sad"),
    ]
    p = dataset_properties(EMO, samples)
    assert p.duration.n == 2 and p.duration.mean == pytest.approx(3.0)
    p2 = dataset_properties(EMO, samples, duration=lambda s: 12.0)
    assert p2.duration.n == 3 and p2.duration.max == 12.0
    assert duration_strata(samples, edges=(0, 3, 6)) == {"a": "0-3s", "b": "3-6s"}


def test_sims_unimodal_agreement():
    def s(i, m, t, a, v):
        return Sample(id=str(i), transcript="你好世界", target=m, meta={"label_T": t, "label_A": a, "label_V": v})

    samples = [
        s(0, 0.8, 0.6, 0.4, 1.0),  # all agree (positive)
        s(1, -0.6, -0.2, 0.4, -1.0),  # A disagrees
        s(2, 0.2, -0.4, 0.6, 0.2),  # T disagrees
        s(3, 0.0, 0.0, -0.2, 0.0),  # A disagrees with neutral
    ]
    ag = unimodal_agreement(samples)
    assert ag["T"] == pytest.approx(0.75) and ag["A"] == pytest.approx(0.5) and ag["V"] == pytest.approx(1.0)
    assert ag["all"] == pytest.approx(0.25) and ag["n"] == 4
    assert ag["unimodal_consensus"] == pytest.approx(0.25)
    assert agreement_strata(samples) == {"0": "agree", "1": "disagree", "2": "disagree", "3": "disagree"}
    p = dataset_properties(SIMS, samples)
    assert p.class_counts == {"negative": 1, "neutral": 1, "positive": 2}
    assert p.transcript_length.mean == 4  # characters for Chinese
    assert p.unimodal_agreement["all"] == pytest.approx(0.25)
    assert p.numeric()["unimodal_all_agree"] == pytest.approx(0.25)


def test_no_unimodal_labels_gives_none():
    samples = [Sample(id="a", transcript="x", target=1.0, meta={"label_T": ""})]
    assert unimodal_agreement(samples) is None
    assert math.isfinite(dataset_properties(SIMS, samples).label_entropy)
