"""Two-process data-parallel LoRA training on CPU (torchrun, gloo) on the tiny Qwen2.5-Omni thinker:
ranks train on different shards, the adapter equals one process's on the same data, only rank 0 writes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests._tiny import tiny_qwen_omni
from tests.finetune._fixtures import dataset_ref, write_corpus

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("_ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _experiment(path: Path, model: str, ds: dict, ws: Path) -> Path:
    import yaml

    exp = {
        "workspace": str(ws),
        "defaults": {"dataset": ds, "model": {"backend": "hf", "name": model}, "media": {"modalities": "T"}},
        "runs": [
            {
                "name": "sft",
                "kind": "finetune",
                "finetune": {"epochs": 2, "lr": 2e-2, "batch_size": 4, "rank": 4, "alpha": 8, "dropout": 0.0},
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
