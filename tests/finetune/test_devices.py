"""Each rank of a multi-GPU launch picks its own device from LOCAL_RANK (GPU presence simulated)."""

from __future__ import annotations

from affectbench.models.hf import torch_device


def test_each_rank_takes_its_own_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # test double: a machine with GPUs
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert torch_device() == "cuda:3"
    monkeypatch.delenv("LOCAL_RANK")
    assert torch_device() == "cuda:0"
    assert torch_device("cpu") == "cpu" and torch_device("cuda:1") == "cuda:1"


def test_cpu_without_gpus(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert torch_device() == "cpu"
