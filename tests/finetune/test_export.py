"""Export of training pairs to LLaMA-Factory (qwen2_omni sharegpt) and ms-swift JSONL."""

from __future__ import annotations

import json

import pytest

from affectbench.core.errors import AffectbenchError
from affectbench.core.types import DatasetInfo, Sample, TaskType
from affectbench.finetune.export import (
    export_llamafactory,
    export_swift,
    validate_llamafactory_row,
)
from affectbench.finetune.pairs import build_pairs
from affectbench.prompts import load_prompt
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


def test_cli_exports_a_finetune_runs_pairs(tmp_path):
    from typer.testing import CliRunner

    from affectbench.cli import app
    from affectbench.core.specs import FinetuneSpec, RunSpec
    from affectbench.engine.store import Store
    from tests.finetune._fixtures import dataset_ref, write_corpus

    clip = make_clip(tmp_path / "c.mp4", 1.0)
    ds = dataset_ref(write_corpus(tmp_path / "data", {"train": 4, "valid": 2, "test": 0}, media={"video": str(clip)}))
    spec = RunSpec(kind="finetune", dataset=ds, model={"backend": "hf", "name": "x"}, finetune=FinetuneSpec())
    ws = tmp_path / "ws"
    store = Store(ws / "affectbench.sqlite")
    store.open_run(spec)
    cli = CliRunner()
    r = cli.invoke(
        app, ["export", "--format", "llamafactory", spec.run_id, "--workspace", str(ws), "--out", str(tmp_path / "lf")]
    )
    assert r.exit_code == 0, r.output
    folder = tmp_path / "lf" / spec.run_id
    info = json.loads((folder / "dataset_info.json").read_text())
    assert set(info) == {f"{spec.run_id}-train", f"{spec.run_id}-valid"}
    rows = json.loads((folder / f"{spec.run_id}-train.json").read_text())
    assert [r["messages"][-1]["content"] for r in rows] == ["positive", "negative"] * 2
    assert all(r["messages"][-2]["content"].startswith("<video><audio>") and r["videos"] == [str(clip)] for r in rows)
    r = cli.invoke(
        app, ["export", "--format", "swift", spec.run_id, "--workspace", str(ws), "--out", str(tmp_path / "sw")]
    )
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "sw" / spec.run_id / f"{spec.run_id}-valid.jsonl").read_text().splitlines()
    assert len(lines) == 2
    # an eval run has no training pairs: refused by name
    ev = RunSpec(dataset=ds, model={"backend": "hf", "name": "x"})
    store.open_run(ev)
    r = cli.invoke(app, ["export", "--format", "swift", ev.run_id, "--workspace", str(ws)])
    assert r.exit_code != 0 and "is of kind eval; give a finetune run" in str(r.exception)
