"""`affectbench plan` / `engine.preflight`: per-run token counts from headers and processor settings,
checked against what the hf backend's processor then makes of the decoded clips; context refusal of an
over-long fixture run; memory from the meta-device build; the table for zoo-meld.yaml."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from affectbench.cli import app
from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec, RunSpec
from affectbench.core.types import Message, Part
from affectbench.engine.preflight import preflight, table
from affectbench.models.hf import HFModel
from tests._clips import make_clip
from tests.finetune._fixtures import dataset_ref, write_corpus

pytest.importorskip("transformers")
pytest.importorskip("torchvision")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    """A tiny Qwen2.5-Omni thinker with the released processor settings (128..768 tokens per frame)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import _zoo

    return _zoo.build("qwen2_5_omni", tmp_path_factory.mktemp("pf_omni"), full_scale=True)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("pf_clips")
    return {
        "short": make_clip(d / "short.mp4", 1.5, size=(160, 90)),
        "mid": make_clip(d / "mid.mp4", 4.2, size=(96, 64), freq=300),
        "long": make_clip(d / "long.mp4", 40.0, size=(64, 48), freq=500),
    }


def spec_for(omni, root, **media):
    return RunSpec(
        dataset=dataset_ref(root),
        model=ModelSpec(backend="hf", name=str(omni)),
        media=MediaSpec(fps=2, **media),
        generation=GenerationSpec(max_new_tokens=4),
    )


def test_media_tokens_equal_what_the_processor_makes(omni, clips, tmp_path):
    from affectbench.engine.runner import run_spec
    from affectbench.engine.store import Store

    for key in ("short", "mid"):
        root = write_corpus(tmp_path / key, {"train": 0, "valid": 0, "test": 2}, media={"video": str(clips[key])})
        spec = spec_for(omni, root)
        pf = preflight(spec)
        model = HFModel(spec.model, spec.media, tmp_path)
        parts = [Part(kind="video", path=str(clips[key])), Part(kind="audio", path=str(clips[key])), Part.of_text("x")]
        enc = model.encode([model.prepare([Message(role="user", parts=parts)])], spec.generation)
        proc = model.processor
        ids = enc["input_ids"][0].tolist()
        video = ids.count(proc.tokenizer.convert_tokens_to_ids(proc.video_token))
        audio = ids.count(proc.tokenizer.convert_tokens_to_ids(proc.audio_token))
        assert pf.samples == 2 and not pf.text_estimated  # the folder's tokenizer counted the text
        assert pf.tokens["video"] == (video, video) and pf.tokens["audio"] == (audio, audio), (key, pf.tokens)
        assert video > 0 and audio > 0
        # the whole prompt the run then sends: the preflight lacks only the chat template's own tokens
        store = Store(tmp_path / f"ws-{key}" / "affectbench.sqlite")
        rec = run_spec(spec, store)
        sent = [p.meta["n_input_tokens"] for p in store.predictions(rec.id)]
        assert all(0 <= n - pf.tokens["prompt"][1] <= 40 for n in sent), (sent, pf.tokens)
        assert pf.context == 4096 and pf.over == []
        assert pf.kv_bytes == pf.kv_per_token * 8 * (pf.tokens["prompt"][1] + 4)


def test_an_over_long_run_is_refused_by_plan(omni, clips, tmp_path):
    """qwen-omni-utils takes the whole 40 s clip (80 frames, >= 128 tokens each): over the 4096 context."""
    root = write_corpus(tmp_path / "long", {"train": 0, "valid": 0, "test": 2}, media={"video": str(clips["long"])})
    pf = preflight(spec_for(omni, root, preset="qwen-omni-utils"), tokens_per_s=1000.0)
    assert pf.refused and pf.over == ["test000", "test001"]
    assert pf.tokens["video"][1] >= 40 * 128 and "exceed the context of 4096" in pf.reason()
    assert pf.seconds == pytest.approx(2 * (pf.tokens["prompt"][0] + 4) / 1000.0)
    ok = preflight(spec_for(omni, root))  # the default budget: 32 frames -> fits
    assert not ok.refused and ok.tokens["video"][1] < 4096
    # a video-token budget thins the preset's 80 frames: the plan counts what the backend then sends
    budgeted = spec_for(omni, root, preset="qwen-omni-utils", max_video_tokens=2000)
    fit = preflight(budgeted)
    assert not fit.refused and fit.video_cut == 2 and fit.tokens["video"][1] <= 2000
    m = HFModel(budgeted.model, budgeted.media, tmp_path)
    parts = [
        Part(kind="video", path=str(clips["long"])),
        Part(kind="audio", path=str(clips["long"])),
        Part.of_text("x"),
    ]
    (g,) = m.generate([m.prepare([Message(role="user", parts=parts)])], GenerationSpec(max_new_tokens=1))
    assert g.meta["tokens"]["video"] == fit.tokens["video"][1] and g.meta["video_truncated"]
    assert g.meta["tokens"]["audio"] == fit.tokens["audio"][1]
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        f"workspace: {tmp_path / 'ws'}\n"
        f"defaults: {{dataset: {{name: manifest, root: {root}, options: {{task: classification, labels: [negative, positive], task_name: sentiment}}}}, generation: {{max_new_tokens: 4}}}}\n"
        f"runs:\n  - name: preset\n    model: {{backend: hf, name: {omni}}}\n    media: {{preset: qwen-omni-utils}}\n"
        f"  - name: budgeted\n    model: {{backend: hf, name: {omni}}}\n"
    )
    r = CliRunner().invoke(app, ["plan", str(exp), "--tokens-per-s", "500"])
    assert r.exit_code == 2, r.output
    assert "refused" in r.output and "test000" in r.output and "REFUSED" in r.output
    r = CliRunner().invoke(app, ["plan", str(exp), "--only", "budgeted"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["run", str(exp), "--dry-run"])
    assert r.exit_code == 0 and "REFUSED" in r.output  # --dry-run shows the same table
    assert not (tmp_path / "ws" / "affectbench.sqlite").exists()


def test_zoo_meld_table_prints_with_released_configs():
    r = CliRunner().invoke(app, ["plan", str(ROOT / "src/affectbench/experiments/zoo-meld.yaml")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    omni = next(x for x in lines if x.startswith("qwen2.5-omni-7b"))
    assert "8.93e9" in omni and "16.64" in omni and "32768" in omni and "56" in omni  # 56 KiB KV per token
    assert any(x.startswith("qwen2.5-vl-7b") and "8.29e9" in x for x in lines)
    assert "root folder /data/MELD does not exist" in r.output  # samples need the data: said, not guessed


def test_table_of_a_text_only_scripted_run(tmp_path):
    root = write_corpus(tmp_path / "t", {"train": 0, "valid": 0, "test": 3})
    spec = RunSpec(dataset=dataset_ref(root), model=ModelSpec(backend="scripted"), media=MediaSpec(modalities="T"))
    pf = preflight(spec)
    assert pf.samples == 3 and pf.text_estimated and pf.context is None and not pf.refused
    assert "≈" in table([pf]) and pf.row()["verdict"] == "ok"
