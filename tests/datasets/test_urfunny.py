"""UR-FUNNY v2: pickles only behind trust_pickles; folds and labels."""

from __future__ import annotations

import pytest

from affectbench.core.errors import DatasetError
from affectbench.core.types import Turn
from affectbench.datasets import load_dataset
from tests.datasets.fixtures import write_urfunny_fixture


def test_refuses_pickles_without_opt_in(tmp_path) -> None:
    write_urfunny_fixture(tmp_path, clips=False)
    with pytest.raises(DatasetError) as e:
        load_dataset("urfunny", root=tmp_path)
    msg = str(e.value)
    assert "execute arbitrary code" in msg
    assert "--set dataset.options.trust_pickles=true" in msg and "trust_pickles: true" in msg
    with pytest.raises(DatasetError):
        load_dataset("urfunny", root=tmp_path, trust_pickles="false")


def test_loads_with_opt_in(tmp_path) -> None:
    write_urfunny_fixture(tmp_path, clips=False)
    ds = load_dataset("urfunny", root=tmp_path, trust_pickles=True)
    assert ds.info.labels == ("not humorous", "humorous") and ds.info.task_name == "humour"
    train, valid, test = (ds.load(s) for s in ("train", "valid", "test"))
    assert [s.id for s in train] == ["11", "12"] and [s.id for s in valid] == ["13"]  # dev -> valid
    assert [s.target for s in train + valid + test] == [
        "humorous",
        "not humorous",
        "humorous",
        "not humorous",
        "humorous",
    ]
    assert train[0].transcript == "and that is why I never fly 11"
    assert train[0].context == [Turn("so I was at the airport 11"), Turn("and the man said")]
    assert train[0].media["video"] == str(tmp_path / "urfunny2_videos" / "11.mp4")
    assert load_dataset("urfunny", root=tmp_path, trust_pickles="true").load("test")[1].id == "15"


def test_missing_and_broken_pickles(tmp_path) -> None:
    ds = load_dataset("urfunny", root=tmp_path, trust_pickles=True)
    with pytest.raises(DatasetError, match=r"data_folds\.pkl not found; expected the UR-FUNNY v2 pickles"):
        ds.load("train")
    write_urfunny_fixture(tmp_path, clips=False)
    (tmp_path / "humor_label_sdk.pkl").write_bytes(b"not a pickle")
    with pytest.raises(DatasetError, match=r"cannot unpickle .*humor_label_sdk\.pkl"):
        load_dataset("urfunny", root=tmp_path, trust_pickles=True).load("train")


def test_groups_join_punchlines_of_one_talk(tmp_path) -> None:
    import pickle

    fx = write_urfunny_fixture(tmp_path, clips=False)
    language = fx["language"]
    # 15's context quotes 14's punchline: the same talk; 11..13 share nothing of 6+ words
    language[15]["context_sentences"] = [language[14]["punchline_sentence"], "and the man said"]
    with (tmp_path / "language_sdk.pkl").open("wb") as f:
        pickle.dump(language, f)
    test = load_dataset("urfunny", root=tmp_path, trust_pickles=True).load("test")
    assert [s.group for s in test] == [test[0].group] * 2
    train = load_dataset("urfunny", root=tmp_path, trust_pickles=True).load("train")
    assert len({s.group for s in train}) == 2
