"""The synthetic demo dataset: deterministic for a seed, MMSA layout readable by the loader."""

from __future__ import annotations

import csv
import hashlib

import pytest

from affectbench.datasets import load_dataset
from affectbench.datasets.demo import write_demo

pytest.importorskip("av")
pytest.importorskip("cv2")


def _digest(root):
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(root)).encode() + f.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("demo") / "d", n=15, seed=0)


def test_same_seed_same_files_other_seed_other_labels(demo, tmp_path):
    again = write_demo(tmp_path / "again", n=15, seed=0)
    assert _digest(demo) == _digest(again)
    other = write_demo(tmp_path / "other", n=15, seed=1)
    assert (other / "label.csv").read_text() != (demo / "label.csv").read_text()


def test_layout_is_mmsa_and_loader_reads_it(demo):
    with (demo / "label.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "video_id",
        "clip_id",
        "text",
        "label",
        "label_T",
        "label_A",
        "label_V",
        "annotation",
        "mode",
    ]
    ds = load_dataset("demo", demo)
    assert ds.info.metric_suite == "mosi" and ds.info.score_range == (-3.0, 3.0)
    splits = {s: ds.load(s) for s in ds.splits()}
    assert sum(len(v) for v in splits.values()) == 15
    assert [len(splits[s]) for s in ("train", "valid", "test")] == [9, 3, 3]
    groups = {s: {x.group for x in v} for s, v in splits.items()}
    assert not (groups["train"] & groups["test"])  # a video never spans two splits
    for s in splits["train"]:
        assert -3.0 <= s.target <= 3.0
        assert s.media["video"].endswith(".mp4") and (demo / "Raw" / s.group).is_dir()
        assert {"label_T", "label_A", "label_V"} <= set(s.meta)


def test_some_clips_disagree_across_modalities(demo):
    with (demo / "label.csv").open() as f:
        rows = list(csv.DictReader(f))
    disagree = [r for r in rows if (float(r["label_T"]) > 0) != (float(r["label_A"]) > 0) and float(r["label_T"]) != 0]
    assert disagree, "the demo must include clips where words and voice/face disagree"
    for r in rows:
        assert r["annotation"] == (
            "Positive" if float(r["label"]) > 0 else "Negative" if float(r["label"]) < 0 else "Neutral"
        )
