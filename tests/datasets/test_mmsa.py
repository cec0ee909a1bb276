"""MMSA layout: MOSI/MOSEI/SIMS/SIMSv2 from label.csv read by column name."""

from __future__ import annotations

import pytest

from affectbench.core import registry
from affectbench.core.errors import DatasetError
from affectbench.core.types import DatasetInfo, TaskType
from affectbench.datasets import load_dataset
from affectbench.datasets.mmsa import MMSADataset
from tests.datasets.fixtures import MMSA_COLUMNS, write_mmsa_fixture


def test_mosi_ids_targets_splits_media(tmp_path) -> None:
    write_mmsa_fixture(tmp_path, clips=False)
    ds = load_dataset("mosi", root=tmp_path)
    assert ds.info.task is TaskType.REGRESSION and ds.info.score_range == (-3.0, 3.0)
    assert ds.info.metric_suite == "mosi" and ds.info.task_name == "sentiment"
    train, valid, test = (ds.load(s) for s in ("train", "valid", "test"))
    assert [s.id for s in train] == ["03bSnISJMiM$_$1", "03bSnISJMiM$_$2"]
    assert [s.target for s in train] == [-1.8, 2.4]
    assert [s.id for s in valid] == ["0001$_$0002"]  # leading zeros kept
    assert valid[0].group == "0001" and valid[0].target == 0.0
    assert valid[0].media["video"] == str(tmp_path / "Raw" / "0001" / "0002.mp4")
    assert test[0].transcript == "worst movie ever"
    assert train[0].meta["annotation"] == "Negative" and train[0].meta["label_T"] is None


def test_mosei_column_order_is_irrelevant(tmp_path) -> None:
    write_mmsa_fixture(tmp_path, layout="mosei", clips=False)
    assert (tmp_path / "label.csv").read_text().splitlines()[0] == ",".join(MMSA_COLUMNS["mosei"])
    ds = load_dataset("mosei", root=tmp_path)
    assert [s.target for s in ds.load("train")] == [-1.8, 2.4]


def test_sims_keeps_unimodal_labels(tmp_path) -> None:
    write_mmsa_fixture(tmp_path, layout="sims", clips=False)
    for name in ("sims", "simsv2"):
        ds = load_dataset(name, root=tmp_path)
        assert ds.info.language == "zh" and ds.info.score_range == (-1.0, 1.0) and ds.info.metric_suite == "sims"
        (s,) = ds.load("train")
        assert s.id == "video_0001$_$0001" and s.transcript == "我真的很开心" and s.target == 0.8
        assert (s.meta["label_T"], s.meta["label_A"], s.meta["label_V"]) == (1.0, 0.6, None)
        assert s.meta["annotation"] == "Positive"


def test_wrong_root_missing_file_missing_column(tmp_path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset("mosi", root=tmp_path / "nope")
    ds = load_dataset("mosi", root=tmp_path)
    with pytest.raises(DatasetError, match=r"label\.csv not found; expected a CSV with columns video_id, clip_id"):
        ds.load("train")
    cols = [c for c in MMSA_COLUMNS["mosi"] if c != "mode"]
    write_mmsa_fixture(tmp_path, clips=False, columns=cols)
    with pytest.raises(DatasetError, match=r"lacks column\(s\) mode"):
        load_dataset("mosi", root=tmp_path).load("train")


def test_unknown_split_and_unknown_mode(tmp_path) -> None:
    rows = [{"video_id": "a", "clip_id": "1", "text": "x", "label": "1", "mode": "dev"}]
    write_mmsa_fixture(tmp_path, rows, clips=False)
    ds = load_dataset("mosi", root=tmp_path)
    with pytest.raises(DatasetError, match="no split 'dev'"):
        ds.load("dev")
    assert ds.load("train") == []
    assert any("mode dev" in w for w in ds.warnings)


def test_subclass_only_sets_info(tmp_path) -> None:
    class Mine(MMSADataset):
        info = DatasetInfo(corpus="mine", task=TaskType.REGRESSION, score_range=(-3, 3), metric_suite="mosi")

    write_mmsa_fixture(tmp_path, clips=False)
    assert len(Mine(tmp_path).load("train")) == 2


def test_registry_entries_resolve() -> None:
    for name in ("mosi", "mosei", "sims", "simsv2"):
        assert issubclass(registry.DATASETS.load(name), MMSADataset)
