"""LoRA SFT on the tiny Qwen2.5-Omni thinker: loss falls, adapter reloads, eval uses it, resume works."""

from __future__ import annotations

import json

import pytest

from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store
from affectbench.finetune import run_finetune
from affectbench.finetune.lora import Interrupt
from tests._tiny import tiny_qwen_omni
from tests.finetune._fixtures import dataset_ref, write_corpus

FT = FinetuneSpec(epochs=3, lr=2e-2, batch_size=4, rank=4, alpha=8, dropout=0.0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ft")
    model = {"backend": "hf", "name": str(tiny_qwen_omni(tmp / "omni"))}
    root = write_corpus(tmp / "data", {"train": 12, "valid": 4, "test": 4})
    return tmp, model, dataset_ref(root)


def _ft_spec(model, ds, **kw) -> RunSpec:
    return RunSpec(kind="finetune", dataset=ds, model=model, media={"modalities": "T"}, finetune=FT, **kw)


def test_finetune_loss_falls_adapter_reloads_and_eval_uses_it(setup, tmp_path):
    _, model, ds = setup
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    runner = Runner(store, progress=False)
    rec = runner.run(_ft_spec(model, ds))
    assert rec.status == "done"
    m = rec.metrics
    assert m["last_train_loss"] < m["first_train_loss"]
    valid = store.train_logs(rec.id, "valid")
    assert [v["epoch"] for v in valid] == [1.0, 2.0, 3.0]
    assert valid[-1]["loss"] < valid[0]["loss"]
    assert m["best_epoch"] == min(valid, key=lambda v: v["loss"])["epoch"]
    adapter = store.artifact(rec.id, "adapter")
    assert (adapter / "adapter_config.json").is_file() and (adapter / "affectbench_finetune.json").is_file()
    assert adapter.name == "best" and json.loads((adapter / "epoch.json").read_text())["epoch"] == m["best_epoch"]
    # a rerun returns the stored run without training again
    assert runner.run(_ft_spec(model, ds)).metrics == m
    gen = {"max_new_tokens": 2}
    zs = runner.run(RunSpec(dataset=ds, model=model, media={"modalities": "T"}, generation=gen))
    sft = runner.run(RunSpec(dataset=ds, model={**model, "adapter": rec.id}, media={"modalities": "T"}, generation=gen))
    runner.close()
    assert sft.env["fingerprint"] != zs.env["fingerprint"]
    assert [p.raw for p in store.predictions(sft.id)] != [p.raw for p in store.predictions(zs.id)]


def test_training_resumes_from_its_checkpoint_after_a_kill(setup, tmp_path, monkeypatch):
    _, model, ds = setup
    monkeypatch.setenv("AFFECTBENCH_CHECKPOINT_STEPS", "2")
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    runner = Runner(store, progress=False)
    spec = _ft_spec(model, ds, seed=1)
    with pytest.raises(Interrupt):
        run_finetune(runner.store, spec, stop_after_steps=5)
    assert store.run(spec.run_id).status == "interrupted" or store.run(spec.run_id).status == "failed"
    logged = [r["step"] for r in store.train_logs(spec.run_id, "train")]
    assert logged == [1, 2, 3, 4, 5]
    rec = run_finetune(runner.store, spec)
    assert rec.status == "done" and rec.metrics["resumed_from_step"] == 4  # last checkpoint: epoch end at step 4
    assert [r["step"] for r in store.train_logs(spec.run_id, "train")] == list(range(1, 10))
    # provenance: one env segment per start, each with the prompt text and model/data fingerprints
    segs = rec.env["segments"]
    assert len(segs) == 2 and all(s["prompt_text"] and s["fingerprint"] and s["data"]["n"] for s in segs)
    assert segs[0]["fingerprint"] == segs[1]["fingerprint"] and segs[0]["data"] == segs[1]["data"]


def test_rm_then_rerun_trains_afresh(setup, tmp_path):
    from typer.testing import CliRunner

    from affectbench.cli import app

    _, model, ds = setup
    ws = tmp_path / "ws"
    store = Store(ws / "affectbench.sqlite")
    spec = _ft_spec(model, ds, seed=2)
    first = run_finetune(store, spec)
    folder = ws / "artifacts" / spec.run_id
    assert (folder / "checkpoints").is_dir() and first.metrics["resumed_from_step"] == 0
    r = CliRunner().invoke(app, ["rm", spec.run_id, "--workspace", str(ws)])
    assert r.exit_code == 0, r.output
    assert not folder.exists() and not store.has_run(spec.run_id)
    again = run_finetune(store, spec)
    assert again.metrics["resumed_from_step"] == 0 and again.metrics["steps"] == first.metrics["steps"] == 9
    assert [r["step"] for r in store.train_logs(spec.run_id, "train")] == list(range(1, 10))


def test_resume_whose_inputs_changed_is_refused(setup, tmp_path, monkeypatch):
    import json

    from affectbench.core.errors import AffectbenchError

    _, model, _ = setup
    monkeypatch.setenv("AFFECTBENCH_CHECKPOINT_STEPS", "2")
    root = write_corpus(tmp_path / "data", {"train": 12, "valid": 4, "test": 4})
    ds = dataset_ref(root)
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    spec = _ft_spec(model, ds, seed=3)
    with pytest.raises(Interrupt):
        run_finetune(store, spec, stop_after_steps=3)
    # edit one training transcript: same run id (the spec did not change), other training pairs
    manifest = root / "manifest.jsonl"
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows[0]["transcript"] = "This is an edited sentence."
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(AffectbenchError, match=r"other inputs.*affectbench rm"):
        run_finetune(store, spec)
    store.delete_run(spec.run_id)
    rec = run_finetune(store, spec)
    assert rec.status == "done" and rec.metrics["resumed_from_step"] == 0


def test_long_prompts_lose_their_start_and_are_counted(setup, tmp_path):
    """Pairs longer than max_length are cut from the left; the count matches the tokenizer's own lengths."""
    from transformers import AutoProcessor

    from affectbench.datasets import load_dataset
    from affectbench.finetune.pairs import pairs_for_spec

    _, model, ds = setup
    spec = RunSpec(
        kind="finetune",
        dataset=ds,
        model=model,
        media={"modalities": "T"},
        finetune=FT.model_copy(update={"epochs": 1}),
        generation={"system_prompt": "Consider the words carefully. " * 3},
    )
    # reference lengths: the chat template + answer turn, tokenized by the model's own processor
    proc = AutoProcessor.from_pretrained(model["name"])
    dataset = load_dataset(ds["name"], ds["root"], **ds["options"])
    lengths = {}
    for split in ("train", "valid"):
        for p in pairs_for_spec(spec, dataset, split, {}).pairs:
            assert p.conversation[0].role == "system"  # the rendered conversation carries the system prompt
            msgs = [
                {"role": m.role, "content": [{"type": "text", "text": x.text} for x in m.parts if x.kind == "text"]}
                for m in p.conversation
            ]
            text = proc.apply_chat_template(msgs + [{"role": "assistant", "content": p.answer}], tokenize=False)
            lengths[p.sample.id] = len(proc.tokenizer(text.rstrip("\n"))["input_ids"])
    max_length = sorted(lengths.values())[len(lengths) // 2]
    want = sum(n > max_length for n in lengths.values())
    assert 0 < want < len(lengths)
    spec = spec.model_copy(update={"finetune": spec.finetune.model_copy(update={"max_length": max_length})})
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    rec = run_finetune(store, spec)
    assert rec.status == "done" and rec.metrics["truncated"] == want
