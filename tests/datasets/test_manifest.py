"""Generic manifest: CSV or JSONL, per-instance DatasetInfo."""

from __future__ import annotations

import pytest

from affectbench.core.errors import DatasetError
from affectbench.core.types import TaskType
from affectbench.datasets import load_dataset
from tests.datasets.fixtures import write_manifest_fixture


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_classification_manifest(tmp_path, fmt) -> None:
    write_manifest_fixture(tmp_path, fmt=fmt, clips=False)
    ds = load_dataset("manifest", root=tmp_path, labels=["happy", "sad"], task_name="emotion", dataset_name="mine")
    assert ds.info.corpus == "mine" and ds.info.task is TaskType.CLASSIFICATION
    assert ds.info.labels == ("happy", "sad") and ds.splits() == ("train", "valid", "test")
    (train,) = ds.load("train")
    assert train.id == "007" and train.transcript == "I am thrilled" and train.target == "happy"
    assert train.media == {"video": str(tmp_path / "clips" / "a.mp4")}
    assert ds.load("valid")[0].target == "sad"  # dev -> valid, case folded to the label space
    assert ds.load("test")[0].speaker == "s1"


def test_regression_jsonl_with_spans_and_no_split(tmp_path) -> None:
    rows = [
        {"id": 1, "text": "good", "label": 1.5, "audio": "a.wav", "start": 0.5, "end": 2.0, "extra": "x"},
        {"id": 2, "text": "bad", "label": "-2", "group": "g"},
    ]
    write_manifest_fixture(tmp_path, rows, fmt="jsonl", clips=False)
    ds = load_dataset("manifest", root=tmp_path, task="regression", score_range=[-3, 3])
    assert ds.info.score_range == (-3.0, 3.0) and ds.info.metric_suite == "mosi" and ds.splits() == ("test",)
    a, b = ds.load("test")
    assert (a.id, a.transcript, a.target, a.span, a.meta) == ("1", "good", 1.5, (0.5, 2.0), {"extra": "x"})
    assert a.media == {"audio": str(tmp_path / "a.wav")}
    assert (b.target, b.group, a.group) == (-2.0, "g", "1")


def test_labels_inferred_and_info_per_instance(tmp_path) -> None:
    write_manifest_fixture(tmp_path / "a", clips=False)
    write_manifest_fixture(tmp_path / "b", [{"id": "x", "label": "zzz"}], clips=False)
    a, b = load_dataset("manifest", root=tmp_path / "a"), load_dataset("manifest", root=tmp_path / "b")
    assert a.info.labels == ("Sad", "happy") and b.info.labels == ("zzz",)


def test_errors(tmp_path) -> None:
    with pytest.raises(DatasetError, match="holds none of manifest.csv, manifest.jsonl"):
        load_dataset("manifest", root=tmp_path)
    with pytest.raises(DatasetError, match=r"other\.csv not found"):
        load_dataset("manifest", root=tmp_path, file="other.csv")
    write_manifest_fixture(tmp_path, [{"id": "1", "transcript": "t"}], clips=False)
    with pytest.raises(DatasetError, match=r"manifest\.csv lacks column\(s\) label; expected columns id, label"):
        load_dataset("manifest", root=tmp_path)
    write_manifest_fixture(tmp_path, [{"id": "1", "label": "0.5"}], fmt="jsonl", clips=False)
    with pytest.raises(DatasetError, match="score_range"):
        load_dataset("manifest", root=tmp_path, file="manifest.jsonl", task="regression")
    with pytest.raises(DatasetError, match="metric_suite"):
        load_dataset("manifest", root=tmp_path, file="manifest.jsonl", score_range=[0, 10])
    (tmp_path / "bad.jsonl").write_text('{"id": 1, "label": "a"}\n[1, 2]\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl line 2 is not a JSON object"):
        load_dataset("manifest", root=tmp_path, file="bad.jsonl")
