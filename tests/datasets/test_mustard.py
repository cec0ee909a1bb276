"""MUStARD: JSON, context turns, stratified 5-fold and speaker-independent splits."""

from __future__ import annotations

import json

import pytest

from affectbench.core.errors import DatasetError
from affectbench.core.types import Turn
from affectbench.datasets import load_dataset
from tests.datasets.fixtures import mustard_data, write_mustard_fixture


def _splits(ds) -> dict[str, list]:
    return {sp: ds.load(sp) for sp in ds.splits()}


def test_samples_and_context(tmp_path) -> None:
    data = write_mustard_fixture(tmp_path, clips=False)
    ds = load_dataset("mustard", root=tmp_path)
    assert ds.info.labels == ("sincere", "sarcastic") and ds.info.task_name == "sarcasm"
    s = {x.id: x for xs in _splits(ds).values() for x in xs}["1_100"]
    assert s.target == "sarcastic" and s.transcript == data["1_100"]["utterance"]
    assert s.context == [Turn("line 0a", "ROSS"), Turn("line 0b", "RACHEL")]
    assert s.speaker == "CHANDLER" and s.meta["show"] == "FRIENDS"
    assert s.media["video"] == str(tmp_path / "utterances_final" / "1_100.mp4")
    assert s.meta["context_video"] == str(tmp_path / "context_final" / "1_100_c.mp4")


def test_five_folds_partition_and_stratify(tmp_path) -> None:
    write_mustard_fixture(tmp_path, mustard_data(40), clips=False)
    tests = []
    for fold in range(1, 6):
        sp = _splits(load_dataset("mustard", root=tmp_path, fold=fold))
        ids = [s.id for xs in sp.values() for s in xs]
        assert sorted(ids) == sorted(set(ids)) and len(ids) == 40
        assert [s.target for s in sp["test"]].count("sarcastic") == 4 == len(sp["test"]) // 2  # stratified
        assert 0 < len(sp["valid"]) < len(sp["train"])
        tests.append({s.id for s in sp["test"]})
    assert set().union(*tests) == {f"{i + 1}_{100 + i}" for i in range(40)}  # every id tested once
    assert sum(len(t) for t in tests) == 40
    again = _splits(load_dataset("mustard", root=tmp_path, fold=2))["test"]
    assert {s.id for s in again} == tests[1]  # deterministic


def test_speaker_independent_tests_on_friends(tmp_path) -> None:
    write_mustard_fixture(tmp_path, clips=False)
    sp = _splits(load_dataset("mustard", root=tmp_path, split_mode="speaker_independent"))
    assert {s.meta["show"] for s in sp["test"]} == {"FRIENDS"} and len(sp["test"]) == 5
    assert "FRIENDS" not in {s.meta["show"] for s in sp["train"] + sp["valid"]}


def test_errors(tmp_path) -> None:
    with pytest.raises(DatasetError, match="split_mode must be one of auto, published, folds, speaker_independent"):
        load_dataset("mustard", root=tmp_path, split_mode="random")
    with pytest.raises(DatasetError, match="fold must be 1..5"):
        load_dataset("mustard", root=tmp_path, fold=0)
    with pytest.raises(DatasetError, match="fold must be 1..5, got 'x'"):
        load_dataset("mustard", root=tmp_path, fold="x")
    ds = load_dataset("mustard", root=tmp_path)
    with pytest.raises(DatasetError, match=r"sarcasm_data\.json not found; expected a JSON object"):
        ds.load("test")
    (tmp_path / "sarcasm_data.json").write_text(json.dumps({"1_1": {"utterance": "hi", "speaker": "A"}}))
    with pytest.raises(DatasetError, match=r"entry '1_1' lacks key\(s\) sarcasm"):
        load_dataset("mustard", root=tmp_path).load("test")
    (tmp_path / "sarcasm_data.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_dataset("mustard", root=tmp_path).load("test")


def _write_published_split(root, data, n_splits=5):
    """split_indices.p as the MUStARD authors' data_loader.py writes it: sklearn StratifiedKFold over
    sarcasm_data.json in file order, pickled with protocol 2 (fixture made at test time)."""
    import pickle

    import numpy as np
    from sklearn.model_selection import StratifiedKFold

    y = [int(v["sarcasm"]) for v in data.values()]
    folds = list(StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=3).split(np.zeros(len(y)), y))
    (root / "data").mkdir(exist_ok=True)
    with (root / "data" / "split_indices.p").open("wb") as f:
        pickle.dump(folds, f, protocol=2)
    return folds


def test_published_split_indices_are_read_behind_trust_pickles(tmp_path) -> None:
    data = write_mustard_fixture(tmp_path, mustard_data(40), clips=False)
    folds = _write_published_split(tmp_path, data)
    keys = list(data)
    # without the opt-in: our own folds, with a warning; asking for the published split is refused
    plain = load_dataset("mustard", root=tmp_path, fold=2)
    assert plain.split_mode == "folds" and "trust_pickles" in plain.warnings[0]
    assert "not the published split" in plain.describe_split("test")
    with pytest.raises(DatasetError, match="trust_pickles"):
        load_dataset("mustard", root=tmp_path, split_mode="published")
    for fold in (1, 2, 5):
        ds = load_dataset("mustard", root=tmp_path, fold=fold, trust_pickles=True)
        assert ds.split_mode == "published"
        sp = _splits(ds)
        assert {s.id for s in sp["test"]} == {keys[i] for i in folds[fold - 1][1]}
        assert {s.id for s in sp["train"] + sp["valid"]} == {keys[i] for i in folds[fold - 1][0]}
        assert ds.describe_split("test") == f"test of published fold {fold}/5 (split_indices.p)"
        assert tmp_path / "data" / "split_indices.p" in ds.label_files("test")


def test_groups_join_utterances_of_one_scene(tmp_path) -> None:
    data = mustard_data(6)
    a, b, c = list(data)[:3]
    # b's context quotes a line of a's context: one scene of one show (c shares nothing)
    data[a]["context"] = ["I think we should all go home now.", "Fine."]
    data[b]["context"] = ["I think we should all go home now!", "Fine."]
    data[b]["show"] = data[a]["show"]
    write_mustard_fixture(tmp_path, data, clips=False)
    ds = load_dataset("mustard", root=tmp_path, split_mode="speaker_independent")
    groups = {s.id: s.group for xs in _splits(ds).values() for s in xs}
    assert groups[a] == groups[b] and groups[a] != groups[c]
    assert len(set(groups.values())) == 5
