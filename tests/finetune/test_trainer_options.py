"""Trainer options: gradient checkpointing trains the same adapter (it only recomputes activations);
GPU-only or malformed options are refused before training with a sentence naming them."""

from __future__ import annotations

import pytest

from affectbench.core.errors import AffectbenchError
from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.datasets import load_dataset
from affectbench.finetune.backends import trainable_for
from affectbench.finetune.lora import train_lora, training_arguments
from affectbench.finetune.pairs import pairs_for_spec
from tests._tiny import tiny_qwen_omni
from tests.finetune._fixtures import dataset_ref, write_corpus


def _train(model: str, ds: dict, out, **ft_kw):
    from safetensors.torch import load_file

    ft = FinetuneSpec(epochs=1, lr=2e-2, batch_size=4, rank=4, alpha=8, dropout=0.0, valid_split=None, **ft_kw)
    spec = RunSpec(
        kind="finetune", dataset=ds, model={"backend": "hf", "name": model}, media={"modalities": "T"}, finetune=ft
    )
    dataset = load_dataset(ds["name"], ds["root"], **ds["options"])
    pairs = pairs_for_spec(spec, dataset, "train", {}).pairs
    trainable = trainable_for(spec.model, spec.media, None, spec.generation)
    result = train_lora(trainable, pairs, [], ft, out)
    checkpointed = any(getattr(m, "gradient_checkpointing", False) for m in trainable.module.modules())
    return load_file(str(result.adapter / "adapter_model.safetensors")), checkpointed


def test_gradient_checkpointing_trains_the_same_adapter(tmp_path):
    import torch

    model = str(tiny_qwen_omni(tmp_path / "omni"))
    ds = dataset_ref(write_corpus(tmp_path / "data", {"train": 8, "valid": 0, "test": 0}))
    plain, off = _train(model, ds, tmp_path / "a")
    ckpt, on = _train(model, ds, tmp_path / "b", gradient_checkpointing=True)
    assert on and not off  # the option reached the model's layers
    assert plain.keys() == ckpt.keys()
    assert max(float(v.abs().max()) for k, v in plain.items() if "lora_B" in k) > 1e-3
    for k in plain:
        assert torch.allclose(plain[k], ckpt[k], atol=1e-5), k


@pytest.mark.parametrize(
    "kw, world, needle",
    [
        ({"batch_size": 3}, 2, "batch_size 3 does not split over 2 processes"),
        ({"deepspeed": "/nonexistent/zero2.json"}, 1, "finetune.deepspeed: config file not found"),
    ],
)
def test_bad_options_are_refused_by_name(tmp_path, kw, world, needle):
    with pytest.raises(AffectbenchError, match=needle):
        training_arguments(
            FinetuneSpec(**kw), tmp_path, seed=0, checkpoint_every=5, has_valid=False, world=world, n_train=8
        )


def test_half_precision_needs_a_gpu(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only machine, also where a GPU is
    with pytest.raises(AffectbenchError, match="finetune.precision bf16 needs a GPU"):
        training_arguments(
            FinetuneSpec(precision="bf16"), tmp_path, seed=0, checkpoint_every=5, has_valid=False, world=1, n_train=8
        )


def test_same_settings_train_a_byte_identical_adapter(tmp_path):
    """Deterministic kernels + fixed threads: a rerun reproduces the adapter exactly (same machine kind)."""
    import torch

    model = str(tiny_qwen_omni(tmp_path / "omni"))
    ds = dataset_ref(write_corpus(tmp_path / "data", {"train": 8, "valid": 0, "test": 0}))
    first, _ = _train(model, ds, tmp_path / "a", threads=1)
    again, _ = _train(model, ds, tmp_path / "b", threads=1)
    assert all(torch.equal(first[k], again[k]) for k in first)
