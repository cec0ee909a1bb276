"""IEMOCAP: sessions, 6- and 4-way labels, leave-one-session-out folds, spans."""

from __future__ import annotations

import pytest

from affectbench.core.errors import DatasetError
from affectbench.datasets import load_dataset
from affectbench.datasets.iemocap import IEMOCAP
from tests.datasets.fixtures import iemocap_dialogs, write_iemocap_fixture


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_iemocap_fixture(tmp_path_factory.mktemp("iemocap"), clips=False)


def test_six_way_labels_and_fields(root) -> None:
    ds = load_dataset("iemocap", root=root)
    assert ds.info.labels == ("happy", "sad", "neutral", "angry", "excited", "frustrated")
    test = ds.load("test")  # default fold 5 -> Session5
    assert {s.meta["session"] for s in test} == {5}
    by_id = {s.id: s for s in test}
    assert "Ses05F_impro01_F001" not in by_id  # xxx dropped
    assert "Ses05M_script01_1_M001" not in by_id  # sur dropped
    s = by_id["Ses05F_impro01_M000"]
    assert s.target == "excited" and s.transcript == "Do you have your forms?"
    assert s.speaker == "Ses05_M" and s.group == "Ses05F_impro01" and s.span == (0.6, 0.9)
    assert s.media["audio"] == str(root / "Session5/sentences/wav/Ses05F_impro01/Ses05F_impro01_M000.wav")
    assert s.media["video"] == str(root / "Session5/dialog/avi/DivX/Ses05F_impro01.avi")
    assert (s.meta["valence"], s.meta["arousal"], s.meta["dominance"]) == (2.5, 3.0, 3.5)
    assert by_id["Ses05M_script01_1_F000"].target == "sad"
    assert sorted(s.target for s in test) == sorted(["neutral", "excited", "frustrated", "happy", "angry", "sad"])


def test_four_way_merges_excited_and_drops_frustrated(root) -> None:
    ds = load_dataset("iemocap4", root=root, fold=1)
    test = ds.load("test")
    assert {s.meta["session"] for s in test} == {1}
    targets = {s.id: s.target for s in test}
    assert targets["Ses01F_impro01_M000"] == "happy"  # exc -> happy
    assert "Ses01F_impro01_M001" not in targets  # fru dropped
    assert set(targets.values()) <= set(ds.info.labels)


def test_folds_are_leave_one_session_out(root) -> None:
    for fold in (1, 3, 5):
        ds = load_dataset("iemocap", root=root, fold=fold)
        splits = {sp: ds.load(sp) for sp in ds.splits()}
        sessions = {sp: {s.meta["session"] for s in xs} for sp, xs in splits.items()}
        assert sessions["test"] == {fold}
        assert fold not in sessions["train"] | sessions["valid"]
        valid_dialogs = {s.group for s in splits["valid"]}
        assert valid_dialogs == {
            d for s in range(1, 6) if s != fold for d in iemocap_dialogs(s) if IEMOCAP.is_valid_dialog(d)
        }
        assert not valid_dialogs & {s.group for s in splits["train"]}
        ids = [s.id for xs in splits.values() for s in xs]
        assert len(ids) == len(set(ids)) == 5 * 6  # every kept utterance in exactly one split
    assert IEMOCAP.is_valid_dialog("Ses02F_impro01")  # the fixture's valid dialogue


def test_errors(tmp_path, root) -> None:
    with pytest.raises(DatasetError, match=r"no Session1\.\.Session5 folders .*EmoEvaluation"):
        load_dataset("iemocap", root=tmp_path)
    with pytest.raises(DatasetError, match="fold must be 1..5"):
        load_dataset("iemocap", root=root, fold=6)
    write_iemocap_fixture(tmp_path / "IEMOCAP_full_release", sessions=(1, 2), clips=False)
    ds = load_dataset("iemocap", root=tmp_path, fold=2)  # parent of IEMOCAP_full_release accepted
    assert {s.meta["session"] for s in ds.load("train")} == {1}
    assert any("3, 4, 5 missing" in w for w in ds.warnings)
    with pytest.raises(DatasetError, match="Session5"):
        load_dataset("iemocap", root=tmp_path).load("test")
