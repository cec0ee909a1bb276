"""MELD: CSVs, split folders, dialogue context, speaker, mojibake repair."""

from __future__ import annotations

import pytest

from affectbench.core.errors import DatasetError
from affectbench.core.types import Turn
from affectbench.datasets import load_dataset
from affectbench.datasets.meld import KNOWN_DEFECTS, MELD
from tests.datasets.fixtures import MELD_COLUMNS, write_meld_fixture


def test_emotion_and_sentiment_tasks(tmp_path) -> None:
    write_meld_fixture(tmp_path, clips=False)
    emo = load_dataset("meld", root=tmp_path)
    sen = load_dataset("meld-sentiment", root=tmp_path)
    assert emo.info.labels == ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger")
    assert sen.info.labels == ("negative", "neutral", "positive")
    assert (emo.info.task_name, sen.info.task_name) == ("emotion", "sentiment")
    train = emo.load("train")
    assert [s.id for s in train] == [
        "train_dia0_utt0",
        "train_dia0_utt1",
        "train_dia0_utt2",
        "train_dia1_utt0",
        "train_dia125_utt3",
    ]
    assert [s.target for s in train] == ["neutral", "neutral", "joy", "surprise", "anger"]
    assert [s.target for s in sen.load("train")] == ["neutral", "neutral", "positive", "positive", "negative"]
    assert train[2].meta["sentiment"] == "positive" and train[2].meta["season"] == "8"


def test_splits_folders_context_speaker(tmp_path) -> None:
    write_meld_fixture(tmp_path, clips=False)
    ds = load_dataset("meld", root=tmp_path)
    assert ds.splits() == ("train", "valid", "test")
    valid = ds.load("valid")  # dev_sent_emo.csv
    assert [s.id for s in valid] == ["valid_dia0_utt0", "valid_dia110_utt7"]
    assert valid[0].media["video"] == str(tmp_path / "dev_splits_complete" / "dia0_utt0.mp4")
    test = ds.load("test")
    assert test[0].media["video"] == str(tmp_path / "output_repeated_splits_test" / "dia0_utt0.mp4")
    assert test[2].context == [
        Turn("Why do all you’re coffee mugs have numbers on the bottom?", "Mark"),
        Turn("Oh. That’s so Monica can keep track.", "Rachel"),
    ]
    assert test[0].context == [] and test[2].speaker == "Rachel"
    assert test[2].group == "test_dia0" != ds.load("train")[0].group  # dialogue ids restart per split


def test_mojibake_repaired(tmp_path) -> None:
    write_meld_fixture(tmp_path, clips=False)
    raw = (tmp_path / "train_sent_emo.csv").read_text(encoding="utf-8")
    assert "companyâ€™s" in raw and "must\u00e2\u0080\u0099ve" in raw
    train = load_dataset("meld", root=tmp_path).load("train")
    assert train[0].transcript == "also I was the point person on my company’s transition"
    assert train[1].transcript == "You must’ve had your hands full."
    assert train[2].context[1].text == "You must’ve had your hands full."


def test_cp1252_encoded_csv(tmp_path) -> None:
    write_meld_fixture(tmp_path, clips=False)
    rows = (tmp_path / "test_sent_emo.csv").read_text(encoding="utf-8").replace("youâ€™re", "you’re")
    (tmp_path / "test_sent_emo.csv").write_bytes(rows.replace("Thatâ€™s", "That’s").encode("cp1252"))
    with pytest.raises(UnicodeDecodeError):
        (tmp_path / "test_sent_emo.csv").read_text(encoding="utf-8")
    test = load_dataset("meld", root=tmp_path).load("test")
    assert test[1].transcript == "Oh. That’s so Monica can keep track."


def test_alternative_clip_folder_names(tmp_path) -> None:
    write_meld_fixture(tmp_path, clips=False)
    (tmp_path / "Train").mkdir()
    (tmp_path / "DEV").mkdir()
    ds = load_dataset("meld", root=tmp_path)
    assert ds.load("train")[0].media["video"] == str(tmp_path / "Train" / "dia0_utt0.mp4")
    assert ds.load("valid")[0].media["video"] == str(tmp_path / "DEV" / "dia0_utt0.mp4")
    ds = load_dataset("meld", root=tmp_path, clip_dirs={"test": "my_test"})
    assert ds.load("test")[0].media["video"] == str(tmp_path / "my_test" / "dia0_utt0.mp4")


def test_meld_raw_parent_folder_accepted(tmp_path) -> None:
    write_meld_fixture(tmp_path / "MELD.Raw", clips=False)
    assert len(load_dataset("meld", root=tmp_path).load("test")) == 3


def test_errors_name_file_and_columns(tmp_path) -> None:
    ds = load_dataset("meld", root=tmp_path)
    with pytest.raises(DatasetError, match=r"train_sent_emo\.csv not found; expected a CSV with columns Utterance"):
        ds.load("train")
    write_meld_fixture(tmp_path, clips=False, columns=[c for c in MELD_COLUMNS if c != "Emotion"])
    with pytest.raises(DatasetError, match=r"dev_sent_emo\.csv lacks column\(s\) Emotion"):
        ds.load("valid")


def test_known_defects_constant() -> None:
    assert set(KNOWN_DEFECTS) == {"valid_dia110_utt7", "train_dia125_utt3"}
    assert MELD.known_defects is KNOWN_DEFECTS
