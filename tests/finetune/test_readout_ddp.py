"""Readout `lora_head` (LoRA + a linear head) on several ranks, on the tiny Qwen2.5-Omni thinker:
(batch 4, accumulation 1), (batch 1, accumulation 4) and two gloo ranks x (batch 2, accumulation 1)
train the same LoRA + head on prompts of different lengths; logged losses are sample-weighted means
(the head's loss is per sample), checked against the head applied by hand to the model's own hidden
states of peft's reload of the saved adapter; only rank 0 writes; a probe on two ranks is refused;
the first-step and finite-gradient guard of generative SFT fails lora_head runs that do not train."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from affectbench.core.errors import AffectbenchError
from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.engine.store import Store
from affectbench.finetune.readout import run_readout
from tests._tiny import tiny_qwen_omni
from tests.finetune._fixtures import UNEVEN_LABELS, write_uneven_corpus
from tests.finetune.test_ddp import REPO, WORKER, _free_port, _launch

pytest.importorskip("peft")

RECIPE = {"epochs": 2, "lr": 2e-2, "rank": 4, "alpha": 8, "dropout": 0.0, "warmup_steps": 0, "threads": 1}
HEAD = {"method": "lora_head", "head_lr": 5e-2}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ro_ddp")
    model = {"backend": "hf", "name": str(tiny_qwen_omni(tmp / "omni"))}
    # transcripts of 5 to 7 words: every batch is padded; 3 valid rows do not split evenly over 2 ranks
    ds = write_uneven_corpus(tmp / "data", {"train": 4, "valid": 3, "test": 3})
    return tmp, model, ds


def _spec(model, ds, readout=HEAD, **ft) -> RunSpec:
    return RunSpec(kind="readout", dataset=ds, model=model, media={"modalities": "T"}, readout=readout,
                   finetune=FinetuneSpec(**{**RECIPE, **ft}))  # fmt: skip


def _experiment(path, ws, model, ds, readout=HEAD, **ft):
    entry = {"name": "head", "kind": "readout", "readout": readout, "finetune": {**RECIPE, **ft}}
    exp = {"workspace": str(ws), "defaults": {"dataset": ds, "model": model, "media": {"modalities": "T"}}}
    path.write_text(yaml.safe_dump({**exp, "runs": [entry]}))
    return path


def _result(ws):
    from safetensors.torch import load_file

    store = Store(ws / "affectbench.sqlite")
    (run,) = store.runs()
    assert run.status == "done", run.error
    losses = {s: [r["loss"] for r in store.train_logs(run.id, s)] for s in ("train", "valid")}
    final = ws / "artifacts" / run.id / "final"
    adapter = store.artifact(run.id, "adapter")
    tensors = {
        name: load_file(str(folder / "adapter_model.safetensors"))
        for name, folder in (("final", final), ("kept", adapter))
    }
    return run, losses, tensors, final, store


def _valid_losses_by_hand(spec, store, final):
    """Per-sample cross-entropy of the final LoRA + head (reloaded by peft onto a fresh base) on each
    valid prompt alone: the model's own last hidden state at the prompt's last token, the head by hand."""
    import torch
    import torch.nn.functional as F
    from peft import PeftModel

    from affectbench.finetune.backends import trainable_for
    from affectbench.finetune.readout import HEAD as HEAD_NAME
    from affectbench.finetune.readout import readout_inputs

    t = trainable_for(spec.model, spec.media, None, spec.generation)
    hidden = t.module.config.get_text_config().hidden_size
    setattr(t.module, HEAD_NAME, torch.nn.Linear(hidden, len(UNEVEN_LABELS)))
    net = PeftModel.from_pretrained(t.module, str(final))
    net.eval()
    head = getattr(net.get_base_model(), HEAD_NAME)
    out = []
    with torch.no_grad():
        for it in readout_inputs(store, spec).valid.items:
            enc = t.encode_prompt([t.prepare(it.conversation)])
            assert bool(enc["attention_mask"].all())  # one row: no padding, the last token is the prompt's last
            states = net(**enc, output_hidden_states=True).hidden_states
            logits = head(states[-1][0, -1].float())
            out.append(float(F.cross_entropy(logits[None], torch.tensor([UNEVEN_LABELS.index(it.sample.target)]))))
    return out


def test_lora_head_batch_accumulation_and_two_ranks_give_one_update_and_sample_weighted_losses(tiny):
    import torch

    tmp, model, ds = tiny
    runs = {}
    for name, kw in {"b4a1": {"batch_size": 4}, "b1a4": {"batch_size": 1, "grad_accum": 4}}.items():
        run_readout(Store(tmp / name / "affectbench.sqlite"), _spec(model, ds, **kw))
        runs[name] = _result(tmp / name)
    _launch(2, _experiment(tmp / "ddp.yaml", tmp / "ddp", model, ds, batch_size=4), tmp / "spy")
    runs["2x b2a1"] = _result(tmp / "ddp")

    # the two ranks trained on different halves of every global batch; only rank 0 wrote to the store
    seen = {r: [s for s in (tmp / "spy" / f"seen-{r}.txt").read_text().split() if s.startswith("train")] for r in "01"}
    assert len(seen["0"]) == len(seen["1"]) == 4  # 2 epochs x 2 of the 4 train rows
    assert not set(seen["0"][:2]) & set(seen["1"][:2]) and len(set(seen["0"][:2]) | set(seen["1"][:2])) == 4
    assert (tmp / "spy" / "writes-0.txt").read_text().strip()
    assert (tmp / "spy" / "writes-1.txt").read_text() == ""

    ref_run, ref_losses, ref, final, store = runs["b4a1"]
    head_keys = [k for k in ref["final"] if "readout_head" in k]
    assert head_keys and any("lora_B" in k for k in ref["final"])
    assert max(float(v.abs().max()) for k, v in ref["final"].items() if "lora_B" in k) > 1e-3  # LoRA moved
    for name, (run, losses, tensors, _, st) in runs.items():
        for which in ("final", "kept"):
            assert tensors[which].keys() == ref[which].keys(), (name, which)
            for k in ref[which]:
                assert torch.allclose(tensors[which][k], ref[which][k], atol=1e-5), (name, which, k)
        assert len(losses["train"]) == 2 and len(losses["valid"]) == 2
        assert losses["train"] == pytest.approx(ref_losses["train"], abs=1e-5), name
        assert losses["valid"] == pytest.approx(ref_losses["valid"], abs=1e-5), name
        assert len(st.predictions(run.id)) == 3, name
    assert runs["2x b2a1"][0].metrics["_readout"]["world"] == 2
    assert ref_run.metrics["_readout"]["world"] == runs["b1a4"][0].metrics["_readout"]["world"] == 1
    assert runs["2x b2a1"][0].metrics["_readout"]["steps"] == ref_run.metrics["_readout"]["steps"] == 2
    # the SFT guard passed on every run; its figures against a hand count: peft saves exactly the trainable
    # tensors; lora_B starts at 0, so lora_A gets no gradient at step 1 (Hu et al. 2021) and only lora_B and
    # the head move; Adam's first step moves each element with a gradient by lr * |g| / (|g| + eps) ~ lr,
    # at most the head's lr (Kingma & Ba 2015, bias-corrected first step)
    not_a = sum("lora_A" not in k for k in ref["final"])
    for name, (run, *_) in runs.items():
        guard = run.metrics["_readout"]["guard"]
        assert guard["step"] == 1 and guard["lr"] == pytest.approx(RECIPE["lr"]), name
        assert guard["tensors"] == len(ref["final"]) and guard["moved"] == not_a < len(ref["final"]), name
        assert guard["max_abs_change"] == pytest.approx(HEAD["head_lr"], rel=1e-4), name
    ddp_preds = {p.sample_id: p.value for p in runs["2x b2a1"][4].predictions(runs["2x b2a1"][0].id)}
    assert ddp_preds == {p.sample_id: p.value for p in store.predictions(ref_run.id)}

    # the last validation loss is the final adapter's mean over the 3 valid samples; the 2-rank split
    # ([v0, v1] on rank 0, [v2, v0 again] on rank 1) would give another number as a mean of batch means
    rows = _valid_losses_by_hand(_spec(model, ds, batch_size=4), store, final)
    sample_mean = sum(rows) / len(rows)
    assert ref_losses["valid"][-1] == pytest.approx(sample_mean, rel=1e-5)
    mean_of_batch_means = ((rows[0] + rows[1]) / 2 + (rows[2] + rows[0]) / 2) / 2
    assert abs(mean_of_batch_means - sample_mean) > 1e-3


def test_lora_head_uneven_micro_batches_weigh_each_sample_the_same(tmp_path):
    """7 train rows: the second optimizer step holds 3 of them, as (3) or (1, 1, 1) or (2, 1) micro-batches;
    dividing by the step's samples gives one update (a mean of micro-batch means would weigh (2, 1) unevenly)."""
    import torch

    model = {"backend": "hf", "name": str(tiny_qwen_omni(tmp_path / "omni"))}
    ds = write_uneven_corpus(tmp_path / "data", {"train": 7, "valid": 3, "test": 2})
    got = {}
    for name, kw in {"b4a1": {"batch_size": 4}, "b1a4": {"batch_size": 1, "grad_accum": 4},
                     "b2a2": {"batch_size": 2, "grad_accum": 2}}.items():  # fmt: skip
        run_readout(Store(tmp_path / name / "affectbench.sqlite"), _spec(model, ds, **kw))
        got[name] = _result(tmp_path / name)
    _, ref_losses, ref, _, _ = got["b4a1"]
    for name, (run, losses, tensors, _, _) in got.items():
        assert run.metrics["_readout"]["steps"] == 4, name  # 2 epochs x ceil(7 / 4)
        assert all(torch.allclose(tensors["final"][k], ref["final"][k], atol=1e-5) for k in ref["final"]), name
        assert losses["train"] == pytest.approx(ref_losses["train"], abs=1e-5), name
        assert losses["valid"] == pytest.approx(ref_losses["valid"], abs=1e-5), name


def test_two_ranks_repeat_samples_to_fill_the_last_global_batch_and_say_so(tiny):
    """6 train rows, global batch 4 on 2 ranks: accelerate's even batches fill the second step with 2 rows
    of the first; the run warns and records it (one process would train the second step on 2 rows)."""
    tmp, model, _ = tiny
    ds = write_uneven_corpus(tmp / "data6", {"train": 6, "valid": 2, "test": 1})
    exp = _experiment(tmp / "six.yaml", tmp / "six", model, ds, batch_size=4, epochs=1)
    out = _launch(2, exp, tmp / "spy6")
    seen = [s for r in "01" for s in (tmp / "spy6" / f"seen-{r}.txt").read_text().split() if s.startswith("train")]
    assert len(seen) == 8 and len(set(seen)) == 6
    run, *_ = _result(tmp / "six")
    assert run.metrics["_readout"]["repeated_per_epoch"] == 2 and run.metrics["_readout"]["world"] == 2
    assert "2 samples are repeated" in out.stderr


def test_probe_on_two_ranks_is_refused_by_name(tiny):
    tmp, model, ds = tiny
    exp = _experiment(tmp / "probe.yaml", tmp / "probe_ws", model, ds, readout={"method": "probe"}, batch_size=4)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]))
    env["SPY_DIR"] = str(tmp / "probe_spy")
    (tmp / "probe_spy").mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(WORKER), "--experiment", str(exp)]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode != 0
    assert "method probe" in out.stderr and "one process" in out.stderr
    assert (
        not (tmp / "probe_ws" / "affectbench.sqlite").exists()
        or not Store(tmp / "probe_ws" / "affectbench.sqlite").runs()
    )


def test_run_readout_refuses_a_probe_under_a_world_of_two(tiny, monkeypatch, tmp_path):
    _, model, ds = tiny
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    store = Store(tmp_path / "affectbench.sqlite")
    with pytest.raises(AffectbenchError, match="method probe runs in one process"):
        run_readout(store, _spec(model, ds, readout={"method": "probe"}))
    assert not store.runs()


@pytest.mark.parametrize(
    "readout,ft",
    [({"method": "lora_head"}, {"lr": 0.0}), (HEAD, {"warmup_from_zero": True, "warmup_steps": 1})],
    ids=["lr0", "warmup_from_zero"],
)
def test_lora_head_whose_first_step_moves_nothing_fails_like_sft(tiny, tmp_path, readout, ft):
    """lr 0 (LoRA and head in one group), or a warm-up from lr 0 (both groups, head_lr too): the first
    optimizer step leaves LoRA and head unchanged and the run fails with the SFT guard's error."""
    _, model, ds = tiny
    store = Store(tmp_path / "affectbench.sqlite")
    spec = _spec(model, ds, readout=readout, batch_size=4, **ft)
    with pytest.raises(AffectbenchError, match=r"LoRA step 1: the adapter did not change over its first optimizer"):
        run_readout(store, spec)
    assert store.run(spec.run_id).status == "failed"
    assert not (tmp_path / "artifacts" / spec.run_id / "final").exists()


def test_lora_head_with_a_non_finite_gradient_fails_before_the_step(tiny, tmp_path, monkeypatch):
    """Test double: the real `head_model`, plus a hook that turns the head's gradient into NaN (what a zero
    pad-embedding row or an fp16 overflow gives); the SFT guard refuses the step and the run fails."""
    import torch

    from affectbench.finetune import readout

    real = readout.head_model

    def nan_head_model(*a, **kw):
        model = real(*a, **kw)
        head = [p for n, p in model.named_parameters() if p.requires_grad and readout.HEAD in n]
        assert head
        head[0].register_hook(lambda g: torch.full_like(g, float("nan")))
        return model

    monkeypatch.setattr(readout, "head_model", nan_head_model)
    _, model, ds = tiny
    store = Store(tmp_path / "affectbench.sqlite")
    spec = _spec(model, ds, batch_size=4)
    with pytest.raises(AffectbenchError, match=r"LoRA step 1: non-finite loss \(0.0\) or gradients"):
        run_readout(store, spec)
    assert store.run(spec.run_id).status == "failed"
