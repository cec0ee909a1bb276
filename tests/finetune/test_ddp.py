"""Two-process data-parallel LoRA training on CPU (torchrun, gloo) on the tiny Qwen2.5-Omni thinker:
ranks train on different shards, the adapter equals one process's on the same data, only rank 0 writes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests._tiny import tiny_qwen_omni
from tests.finetune._fixtures import dataset_ref, write_corpus

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _experiment(path: Path, model: str, ds: dict, ws: Path, epochs: int = 2) -> Path:
    import yaml

    exp = {
        "workspace": str(ws),
        "defaults": {"dataset": ds, "model": {"backend": "hf", "name": model}, "media": {"modalities": "T"}},
        "runs": [
            {
                "name": "sft",
                "kind": "finetune",
                "finetune": {"epochs": epochs, "lr": 2e-2, "batch_size": 4, "rank": 4, "alpha": 8, "dropout": 0.0},
            }
        ],
    }
    path.write_text(yaml.safe_dump(exp))
    return path


def _launch(nproc: int, exp: Path, spy: Path) -> subprocess.CompletedProcess:
    spy.mkdir(parents=True)
    env = dict(
        os.environ, SPY_DIR=str(spy), OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)])
    )
    cmd = [sys.executable, str(WORKER), "--experiment", str(exp)]
    if nproc > 1:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            f"--nproc_per_node={nproc}",
            "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}",
            *cmd[1:],
        ]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


def _adapter(ws: Path):
    from safetensors.torch import load_file

    from affectbench.engine.store import Store

    store = Store(ws / "affectbench.sqlite")
    (run,) = store.runs()
    assert run.status == "done"
    return run, load_file(str(store.artifact(run.id, "adapter") / "adapter_model.safetensors"))


def test_two_processes_train_the_same_adapter_as_one(tmp_path):
    import torch

    model = str(tiny_qwen_omni(tmp_path / "omni"))
    ds = dataset_ref(write_corpus(tmp_path / "data", {"train": 8, "valid": 4, "test": 0}))
    _launch(1, _experiment(tmp_path / "one.yaml", model, ds, tmp_path / "ws1"), tmp_path / "spy1")
    _launch(2, _experiment(tmp_path / "two.yaml", model, ds, tmp_path / "ws2"), tmp_path / "spy2")

    # different shards: each rank encoded half of every global batch, and together all of them
    seen = {r: (tmp_path / "spy2" / f"seen-{r}.txt").read_text().split() for r in "01"}
    train_ids = {f"train{i:03d}" for i in range(8)}
    for r in "01":
        assert len([s for s in seen[r] if s.startswith("train")]) == 8  # 2 epochs x 4 of the 8 pairs
    assert {s for s in seen["0"] if s.startswith("train")} | {
        s for s in seen["1"] if s.startswith("train")
    } == train_ids
    per_epoch = [set(seen[r][:4]) & train_ids for r in "01"]
    assert not per_epoch[0] & per_epoch[1] and len(per_epoch[0] | per_epoch[1]) == 8

    # only rank 0 wrote to the store
    assert (tmp_path / "spy2" / "writes-0.txt").read_text().strip()
    assert (tmp_path / "spy2" / "writes-1.txt").read_text() == ""

    run1, one = _adapter(tmp_path / "ws1")
    run2, two = _adapter(tmp_path / "ws2")
    assert run1.id == run2.id and run1.metrics["steps"] == run2.metrics["steps"] == 4
    assert one.keys() == two.keys() and len(one) > 0
    base_delta = max(float(v.abs().max()) for k, v in one.items() if "lora_B" in k)
    assert base_delta > 1e-3  # training moved the adapter (lora_B starts at zero)
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5, rtol=1e-4), k
    # the record states the ranks; 8 pairs fill every global batch of 4: nothing repeated
    assert (run1.metrics["_recipe"]["world"], run2.metrics["_recipe"]["world"]) == (1, 2)
    for run in (run1, run2):
        assert run.metrics["_recipe"]["repeated_per_epoch"] == 0 and run.metrics["_recipe"]["samples_per_step"] == 4
        # the first-step guard's figures against a hand count: peft saves exactly the trainable tensors;
        # lora_B starts at 0, so lora_A gets no gradient at step 1 (Hu et al. 2021); Adam's first step moves
        # each element with a gradient by lr * |g| / (|g| + eps) ~ lr (Kingma & Ba 2015)
        guard, lr = run.metrics["_guard"], run.metrics["_recipe"]["first_step_lr"]
        assert guard["step"] == 1 and guard["lr"] == pytest.approx(lr) and lr > 0
        assert guard["tensors"] == len(one) and guard["moved"] == sum("lora_B" in k for k in one) == len(one) // 2
        assert guard["max_abs_change"] == pytest.approx(lr, rel=1e-4)


def test_two_ranks_repeat_pairs_to_fill_the_last_global_batch_and_say_so(tmp_path):
    """6 train pairs, global batch 4 on 2 ranks, 1 epoch: accelerate's even batches fill the second step
    with 2 pairs of the first (8 encoded, 6 distinct); the SFT run warns and records it in `_recipe`."""
    model = str(tiny_qwen_omni(tmp_path / "omni"))
    ds = dataset_ref(write_corpus(tmp_path / "data", {"train": 6, "valid": 2, "test": 0}))
    out = _launch(2, _experiment(tmp_path / "six.yaml", model, ds, tmp_path / "ws", epochs=1), tmp_path / "spy")
    seen = [s for r in "01" for s in (tmp_path / "spy" / f"seen-{r}.txt").read_text().split() if s.startswith("train")]
    assert len(seen) == 8 and len(set(seen)) == 6
    run, _ = _adapter(tmp_path / "ws")
    assert run.metrics["_recipe"]["world"] == 2 and run.metrics["_recipe"]["repeated_per_epoch"] == 2
    assert "2 samples are repeated" in out.stderr


@pytest.mark.parametrize("world,batch,accum", [(1, 4, 1), (2, 4, 1), (2, 2, 3), (3, 3, 2), (4, 4, 1), (2, 6, 1)])
def test_data_parallel_record_counts_what_accelerates_sampler_yields(world, batch, accum, caplog):
    """Reference: accelerate's own `prepare_data_loader` (its default even_batches, as the Trainer uses it)
    over a random sampler of an index dataset with the per-device batch batch / world, one loader per rank:
    the items yielded in one epoch beyond n_train are the repeated ones (one process: no prepare, as the
    Trainer keeps the short last batch); samples per step = per-device batch x ranks x accumulation."""
    import torch
    from accelerate.data_loader import prepare_data_loader
    from torch.utils.data import DataLoader, RandomSampler

    from affectbench.core.specs import FinetuneSpec
    from affectbench.finetune.lora import data_parallel_record

    ft = FinetuneSpec(batch_size=batch, grad_accum=accum)
    per_device = batch // world
    for n in range(1, 14):
        yielded = []
        for rank in range(world):
            loader = DataLoader(
                list(range(n)), batch_size=per_device,
                sampler=RandomSampler(range(n), generator=torch.Generator().manual_seed(0)),
            )  # fmt: skip
            if world > 1:
                loader = prepare_data_loader(loader, num_processes=world, process_index=rank, put_on_device=False)
            yielded += [int(i) for b in loader for i in b]
        assert set(yielded) == set(range(n))
        caplog.clear()
        got = data_parallel_record(n, ft, world, run="t")
        assert got == {
            "world": world,
            "samples_per_step": per_device * world * accum,
            "repeated_per_epoch": len(yielded) - n,
        }, n
        assert ("samples are repeated" in caplog.text) == (len(yielded) > n), n
