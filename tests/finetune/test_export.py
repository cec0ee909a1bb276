"""Export of training pairs to LLaMA-Factory (qwen2_omni sharegpt) and ms-swift JSONL."""

from __future__ import annotations

import json

import pytest

from affectbench.errors import AffectbenchError
from affectbench.finetune.export import (
    export_llamafactory,
    export_swift,
    validate_llamafactory_row,
)
from affectbench.finetune.pairs import build_pairs
from affectbench.prompts import load_prompt
from affectbench.types import DatasetInfo, Sample, TaskType
from tests._clips import make_clip

INFO = DatasetInfo("m", TaskType.REGRESSION, score_range=(-3.0, 3.0), metric_suite="mosi", task_name="sentiment")


@pytest.fixture
def pairs(tmp_path):
    clip = make_clip(tmp_path / "a.mp4", 1.0)
    samples = [Sample(id=f"s{i}", transcript="so good", target=1.5 - i, media={"video": str(clip)}) for i in range(3)]
    prompt = load_prompt("default", INFO)
    return build_pairs(samples, INFO, prompt, knowledge={"s0": "Smiling face."}).pairs


def test_llamafactory_rows_pair_each_video_with_its_wav(pairs, tmp_path):
    data = export_llamafactory(pairs, tmp_path / "lf", name="demo")
    rows = json.loads(data.read_text())
    assert len(rows) == 3
    for r in rows:
        user = r["messages"][0]["content"]
        assert user.startswith("<video><audio>") and user.count("<audio>") == 1
        assert len(r["videos"]) == len(r["audios"]) == 1
        assert r["audios"][0].endswith(".wav")
        assert r["messages"][-1] == {"role": "assistant", "content": r["messages"][-1]["content"]}
    assert rows[0]["messages"][-1]["content"] == "1.5"
    assert "Smiling face." in rows[0]["messages"][0]["content"]
    info = json.loads((tmp_path / "lf" / "dataset_info.json").read_text())
    assert info["demo"]["formatting"] == "sharegpt" and info["demo"]["columns"]["audios"] == "audios"
    with pytest.raises(AffectbenchError):
        validate_llamafactory_row({**rows[0], "audios": []})


def test_swift_jsonl(pairs, tmp_path):
    path = export_swift(pairs, tmp_path / "swift" / "train.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 3 and rows[1]["messages"][-1]["role"] == "assistant"
    assert rows[1]["messages"][0]["content"].count("<video>") == len(rows[1]["videos"])
