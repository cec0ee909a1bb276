"""Export of training pairs to LLaMA-Factory (qwen2_omni sharegpt) and ms-swift JSONL."""

from __future__ import annotations

import json
from pathlib import Path

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


def _video_pairs(tmp_path, modalities="TAV", silent_index=None):
    clip = make_clip(tmp_path / "a.mp4", 1.0)
    mute = make_clip(tmp_path / "mute.mp4", 1.0, audio=False)
    samples = [
        Sample(
            id=f"s{i}", transcript="so good", target=1.5 - i, media={"video": str(mute if i == silent_index else clip)}
        )
        for i in range(3)
    ]
    return build_pairs(samples, INFO, load_prompt("default", INFO), modalities=modalities).pairs


def test_a_clip_without_audio_gets_no_audio_tag_instead_of_failing_the_export(tmp_path):
    pairs = _video_pairs(tmp_path, silent_index=1)
    for target in ("lf", "swift"):
        if target == "lf":
            rows = json.loads(export_llamafactory(pairs, tmp_path / target, name="d").read_text())
        else:
            path = export_swift(pairs, tmp_path / target / "d.jsonl")
            rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(rows) == 3
        users = [r["messages"][0]["content"] for r in rows]
        assert users[1].startswith("<video>") and "<audio>" not in users[1] and "audios" not in rows[1]
        assert all(u.startswith("<video><audio>") for u in (users[0], users[2]))
        assert all(Path(p).is_absolute() and Path(p).is_file() for r in rows for p in r["videos"] + r.get("audios", []))


def test_interleaved_audio_in_video_gets_the_video_alone_for_swift(tmp_path):
    """ms-swift with USE_AUDIO_IN_VIDEO=1 loads the video's audio itself: an <audio> + WAV would double it."""
    from affectbench.finetune.export import NO_TRACK_INTERLEAVED, SWIFT_ARGS

    pairs = _video_pairs(tmp_path, silent_index=2)
    skipped: dict = {}
    path = export_swift(pairs, tmp_path / "sw" / "d.jsonl", mode="interleaved", cutoff_len=321, skipped=skipped)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 2 and skipped == {NO_TRACK_INTERLEAVED: ["s2"]}
    for r in rows:
        assert r["messages"][0]["content"].startswith("<video>") and "<audio>" not in r["messages"][0]["content"]
        assert "audios" not in r and len(r["videos"]) == 1
    args = json.loads((path.parent / SWIFT_ARGS).read_text())
    assert args["env"] == {"USE_AUDIO_IN_VIDEO": "1"} and args["max_length"] == 321
    # separate streams: the video and its WAV, and the flag off
    sep = export_swift(pairs, tmp_path / "sep" / "d.jsonl")
    rows = [json.loads(line) for line in sep.read_text().splitlines()]
    assert rows[0]["messages"][0]["content"].startswith("<video><audio>") and rows[0]["audios"][0].endswith(".wav")
    assert json.loads((sep.parent / SWIFT_ARGS).read_text())["env"] == {"USE_AUDIO_IN_VIDEO": "0"}


def test_llamafactory_interleaved_pairs_each_video_with_its_audio_and_sets_the_flag(tmp_path):
    import yaml

    from affectbench.finetune.export import LLAMAFACTORY_ARGS

    pairs = _video_pairs(tmp_path)
    data = export_llamafactory(pairs, tmp_path / "lf", name="d", mode="interleaved", cutoff_len=99)
    rows = json.loads(data.read_text())
    assert all(r["messages"][0]["content"].startswith("<video><audio>") for r in rows)
    args = yaml.safe_load((tmp_path / "lf" / LLAMAFACTORY_ARGS).read_text())
    assert args["use_audio_in_video"] is True and args["cutoff_len"] == 99 and args["template"] == "qwen2_omni"
    assert Path(args["media_dir"]).is_absolute() and args["dataset"] == "d"


def test_a_video_sent_without_its_audio_is_exported_without_it(tmp_path):
    rows = json.loads(
        export_llamafactory(_video_pairs(tmp_path, modalities="TV"), tmp_path / "lf", name="d").read_text()
    )
    assert all("<audio>" not in r["messages"][0]["content"] and "audios" not in r for r in rows)


def test_cli_exports_a_finetune_runs_pairs(tmp_path):
    import yaml
    from transformers import AutoProcessor
    from typer.testing import CliRunner

    from affectbench.cli import app
    from affectbench.core.specs import FinetuneSpec, RunSpec
    from affectbench.engine.store import Store
    from affectbench.finetune.export import LLAMAFACTORY_ARGS, SWIFT_ARGS
    from tests._tiny import tiny_qwen_omni
    from tests.finetune._fixtures import dataset_ref, write_corpus

    model = str(tiny_qwen_omni(tmp_path / "omni"))
    clip = make_clip(tmp_path / "c.mp4", 1.0)
    ds = dataset_ref(write_corpus(tmp_path / "data", {"train": 4, "valid": 2, "test": 0}, media={"video": str(clip)}))
    spec = RunSpec(kind="finetune", dataset=ds, model={"backend": "hf", "name": model}, finetune=FinetuneSpec())
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
    assert all(r["messages"][0]["role"] == "system" and "Qwen" in r["messages"][0]["content"] for r in rows)
    assert all(r["messages"][-2]["content"].startswith("<video><audio>") and r["videos"] == [str(clip)] for r in rows)
    args = yaml.safe_load((folder / LLAMAFACTORY_ARGS).read_text())
    assert args["use_audio_in_video"] is False and args["cutoff_len"] > 50  # video + audio tokens
    r = cli.invoke(
        app, ["export", "--format", "swift", spec.run_id, "--workspace", str(ws), "--out", str(tmp_path / "sw")]
    )
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "sw" / spec.run_id / f"{spec.run_id}-valid.jsonl").read_text().splitlines()
    assert len(lines) == 2
    assert json.loads((tmp_path / "sw" / spec.run_id / SWIFT_ARGS).read_text())["max_length"] == args["cutoff_len"]
    # an eval run has no training pairs: refused by name
    ev = RunSpec(dataset=ds, model={"backend": "hf", "name": "x"})
    store.open_run(ev)
    r = cli.invoke(app, ["export", "--format", "swift", ev.run_id, "--workspace", str(ws)])
    assert r.exit_code != 0 and "is of kind eval; give a finetune run" in str(r.exception)

    # text only: cutoff_len is the longest pair as the model's own chat template and tokenizer count it
    spec = RunSpec(kind="finetune", dataset=ds, model={"backend": "hf", "name": model}, media={"modalities": "T"},
                   finetune=FinetuneSpec())  # fmt: skip
    store.open_run(spec)
    r = cli.invoke(
        app, ["export", "--format", "llamafactory", spec.run_id, "--workspace", str(ws), "--out", str(tmp_path / "t")]
    )
    assert r.exit_code == 0, r.output
    proc = AutoProcessor.from_pretrained(model)
    want = 0
    for split in ("train", "valid"):
        for row in json.loads((tmp_path / "t" / spec.run_id / f"{spec.run_id}-{split}.json").read_text()):
            text = proc.apply_chat_template(row["messages"], tokenize=False)  # ends "<|im_end|>\n", as trainers count
            want = max(want, len(proc.tokenizer(text)["input_ids"]))
    assert yaml.safe_load((tmp_path / "t" / spec.run_id / LLAMAFACTORY_ARGS).read_text())["cutoff_len"] == want
