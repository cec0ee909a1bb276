"""`data check`: missing, unreadable, stream-less, duplicated and mislabeled samples; known defects."""

from __future__ import annotations

import csv
import importlib.util

import pytest

from affectbench.datasets import check as check_mod
from affectbench.datasets.check import check_dataset, probe_media
from tests._clips import make_clip
from tests.datasets.fixtures import (
    MOSI_ROWS,
    write_iemocap_fixture,
    write_manifest_fixture,
    write_meld_fixture,
    write_mmsa_fixture,
)


def _broken_mosi(root):
    """A MOSI copy with one of each problem."""
    rows = [dict(r) for r in MOSI_ROWS] + [
        {"video_id": "dup", "clip_id": "1", "text": "x", "label": "1.0", "mode": "train"},
        {"video_id": "dup", "clip_id": "1", "text": "x again", "label": "1.0", "mode": "test"},
        {"video_id": "big", "clip_id": "1", "text": "y", "label": "4.5", "mode": "test"},
        {"video_id": "nan", "clip_id": "1", "text": "z", "label": "abc", "mode": "valid"},
    ]
    write_mmsa_fixture(root, rows)
    (root / "Raw" / "03bSnISJMiM" / "1.mp4").unlink()  # missing
    (root / "Raw" / "03bSnISJMiM" / "2.mp4").write_bytes(b"garbage" * 200)  # corrupt
    make_clip(root / "Raw" / "0001" / "0002.mp4", 1.0, audio=False)  # no audio stream
    return rows


def test_catches_each_problem(tmp_path) -> None:
    _broken_mosi(tmp_path)
    r = check_dataset("mosi", tmp_path)
    assert r.usable and r.counts == {"train": 3, "valid": 2, "test": 3}
    assert [p.sample_id for p in r.missing] == ["03bSnISJMiM$_$1"]
    assert [p.sample_id for p in r.unreadable] == ["03bSnISJMiM$_$2"]
    assert [p.sample_id for p in r.of_kind("no_audio")] == ["0001$_$0002"]
    assert [(p.sample_id, p.split) for p in r.duplicates] == [("dup$_$1", "test")]
    assert sorted(p.sample_id for p in r.mislabeled) == ["big$_$1", "nan$_$1"]
    assert "outside [-3.0, 3.0]" in {p.sample_id: p.detail for p in r.mislabeled}["big$_$1"]
    assert r.probed == 7 and not r.known
    text = r.render()
    for needle in ("missing (1)", "unreadable (1)", "no_audio (1)", "duplicate (1)", "mislabeled (2)", "usable, with"):
        assert needle in text
    assert "train" in text and "03bSnISJMiM$_$2" in text


def test_clean_copy_has_no_warnings(tmp_path) -> None:
    write_mmsa_fixture(tmp_path, layout="sims")
    r = check_dataset("sims", tmp_path)
    # the only warnings: the three-row copy is not the published 1,368 / 456 / 457 split
    assert r.usable and not r.problems and r.n_warnings == 3
    assert all("the published sims split has" in w for w in r.warnings)
    assert "usable, with 3 warning(s)" in r.render()


def test_meld_known_defects_are_known(tmp_path) -> None:
    write_meld_fixture(tmp_path)
    (tmp_path / "output_repeated_splits_test" / "dia0_utt2.mp4").unlink()  # a surprise
    r = check_dataset("meld", tmp_path)
    assert r.usable
    assert sorted((p.kind, p.sample_id) for p in r.known) == [
        ("missing", "valid_dia110_utt7"),
        ("unreadable", "train_dia125_utt3"),
    ]
    assert [p.sample_id for p in r.missing] == ["test_dia0_utt2"] and not r.unreadable
    text = r.render()
    assert "known defects (2)" in text and "known MELD defect" in text


def test_unusable_datasets(tmp_path) -> None:
    r = check_dataset("mosi", tmp_path / "nope")
    assert not r.usable and "does not exist" in r.render() and "NOT USABLE" in r.render()
    r = check_dataset("mosi", tmp_path)  # no label.csv
    assert not r.usable and any("label.csv not found" in e for e in r.errors)
    write_mmsa_fixture(tmp_path, rows=[], clips=False)  # header only
    r = check_dataset("mosi", tmp_path)
    assert not r.usable and r.counts == {"train": 0, "valid": 0, "test": 0}
    write_mmsa_fixture(tmp_path, clips=False)  # labels fine, every clip missing
    r = check_dataset("mosi", tmp_path)
    assert not r.usable and len(r.missing) == 4 and any("none of the 4 media files" in e for e in r.errors)


def test_urfunny_without_opt_in_is_unusable(tmp_path) -> None:
    r = check_dataset("urfunny", tmp_path)
    assert not r.usable and "trust_pickles" in r.render()


def test_iemocap_probes_wav_and_avi_and_span(tmp_path) -> None:
    write_iemocap_fixture(tmp_path, sessions=(1, 5))
    r = check_dataset("iemocap", tmp_path, fold=5)
    assert r.usable and r.counts["test"] == 6 and not r.problems  # avi + separate wav: no no_audio warnings
    assert r.probed == 4 + 12 and any("missing" in w for w in r.warnings)


def test_manifest_span_beyond_clip_and_unknown_label(tmp_path) -> None:
    rows = [
        {"id": "a", "label": "happy", "video": "a.mp4", "start": "5", "end": "6"},
        {"id": "b", "label": "angry", "video": "b.mp4"},
        {"id": "c", "label": "sad", "video": "c.mp4"},
    ]
    write_manifest_fixture(tmp_path, rows)
    r = check_dataset("manifest", tmp_path, labels=["happy", "sad"])
    assert [p.sample_id for p in r.unreadable] == ["a"] and "after the end" in r.unreadable[0].detail
    assert [p.sample_id for p in r.mislabeled] == ["b"]


def test_without_probing_or_without_pyav(tmp_path, monkeypatch) -> None:
    _broken_mosi(tmp_path)
    r = check_dataset("mosi", tmp_path, probe=False)
    assert [p.sample_id for p in r.missing] == ["03bSnISJMiM$_$1"] and not r.unreadable
    assert "probing was turned off" in r.render()
    real = importlib.util.find_spec
    monkeypatch.setattr(check_mod.importlib.util, "find_spec", lambda n, *a: None if n == "av" else real(n, *a))
    r = check_dataset("mosi", tmp_path)
    assert r.usable and not r.unreadable and "PyAV is not installed" in r.render()


def test_probe_media(tmp_path) -> None:
    good = probe_media(str(make_clip(tmp_path / "g.mp4", 1.0)))
    assert good.ok and good.has_video and good.has_audio and good.duration == pytest.approx(1.0, abs=0.15)
    silent = probe_media(str(make_clip(tmp_path / "v.mp4", 1.0, audio=False)))
    assert silent.ok and silent.has_video and not silent.has_audio
    (tmp_path / "bad.mp4").write_bytes(b"\x00" * 100)
    bad = probe_media(str(tmp_path / "bad.mp4"))
    assert bad.exists and not bad.ok and bad.error
    assert not probe_media(str(tmp_path / "none.mp4")).exists


def test_duplicate_within_one_split(tmp_path) -> None:
    path = write_manifest_fixture(tmp_path, [{"id": "1", "label": "a"}, {"id": "1", "label": "a"}], clips=False)
    assert list(csv.DictReader(path.open()))[1]["id"] == "1"
    r = check_dataset("manifest", tmp_path)
    assert [(p.split, p.sample_id) for p in r.duplicates] == [("test", "1")] and r.usable
