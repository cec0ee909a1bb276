"""The fine-tuning recipe is explicit and the Trainer path follows it: its schedule equals transformers'
own where it should, it trains the same adapter as a plain PyTorch loop, and a first step that leaves the
adapter unchanged (lr 0 from transformers' warm-up) fails the run."""

from __future__ import annotations

import pytest

from affectbench.core.errors import AffectbenchError
from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.datasets import load_dataset
from affectbench.finetune.backends import trainable_for
from affectbench.finetune.lora import train_lora
from affectbench.finetune.pairs import pairs_for_spec
from affectbench.finetune.schedule import lr_factor
from tests._tiny import tiny_qwen_omni
from tests.finetune._fixtures import write_uneven_corpus
from tests.finetune._plain_loop import plain_lora

OLD_FINETUNE_KEYS = {
    "train_split", "valid_split", "rank", "alpha", "dropout", "target_modules", "train_towers", "lr", "epochs",
    "batch_size", "grad_accum", "max_length", "train_limit",
}  # fmt: skip


@pytest.mark.parametrize("kind", ["linear", "cosine", "constant"])
def test_warmup_from_zero_is_transformers_schedule(kind):
    """With warmup_from_zero the factor is transformers.get_scheduler's at every step (first step: lr 0)."""
    import torch
    from transformers import get_scheduler

    total, warm = 20, 3
    ft = FinetuneSpec(lr_scheduler=kind, warmup_steps=warm, warmup_from_zero=True, lr=1.0)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    name = "constant_with_warmup" if kind == "constant" else kind
    sched = get_scheduler(name, opt, num_warmup_steps=warm, num_training_steps=total)
    for step in range(total):
        assert lr_factor(ft, step, total) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12), step
        opt.step()
        sched.step()
    assert lr_factor(ft, 0, total) == 0.0
    # the default starts training at the first step: lr / W, full lr at the last warm-up step
    ft = ft.model_copy(update={"warmup_from_zero": False})
    assert [lr_factor(ft, s, total) for s in range(warm)] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_recipe_is_in_the_run_id_and_old_ids_stay_valid():
    ds = {"name": "manifest", "root": "/x"}
    model = {"backend": "hf", "name": "m"}

    def ident(ft):
        return RunSpec(kind="finetune", dataset=ds, model=model, finetune=ft).identity()["finetune"]

    # the recipe the Trainer path had before these fields (warm-up from lr 0) keeps its old identity
    assert set(ident(FinetuneSpec(warmup_from_zero=True))) == OLD_FINETUNE_KEYS
    # the new default changed what is trained: a new id
    assert ident(FinetuneSpec())["warmup_from_zero"] is False
    for kw in (
        {"weight_decay": 0.01},
        {"max_grad_norm": None},
        {"warmup_ratio": 0.1},
        {"warmup_steps": 3},
        {"lr_scheduler": "cosine"},
        {"loss_normalisation": "sequences"},
        {"loss_tokens": "answer"},
    ):
        assert ident(FinetuneSpec(warmup_from_zero=True, **kw)) != ident(FinetuneSpec(warmup_from_zero=True)), kw


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recipe")
    model = {"backend": "hf", "name": str(tiny_qwen_omni(tmp / "omni"))}
    ds = write_uneven_corpus(tmp / "data", {"train": 4, "valid": 0, "test": 0})
    return model, ds


def _pairs_and_trainable(model, ds, ft):
    spec = RunSpec(kind="finetune", dataset=ds, model=model, media={"modalities": "T"}, finetune=ft)
    dataset = load_dataset(ds["name"], ds["root"], **ds["options"])
    pairs = pairs_for_spec(spec, dataset, "train", {}).pairs
    return pairs, trainable_for(spec.model, spec.media, None, spec.generation)


def test_trainer_path_trains_what_a_plain_loop_trains(tiny, tmp_path):
    """Same pairs, seed, warm-up, schedule, weight decay and clipping: same loss curve, same adapter."""
    import torch
    from safetensors.torch import load_file

    model, ds = tiny
    ft = FinetuneSpec(
        epochs=4, lr=1e-2, batch_size=4, rank=4, alpha=8, dropout=0.0, valid_split=None,
        warmup_steps=2, weight_decay=0.1, max_grad_norm=0.5,
    )  # fmt: skip
    pairs, trainable = _pairs_and_trainable(model, ds, ft)
    lrs: list[float] = []
    result = train_lora(
        trainable, pairs, [], ft, tmp_path / "t", seed=0, log_fn=lambda s, split, loss, e, **m: lrs.append(m["lr"])
    )
    trainer_losses = [h["loss"] for h in result.history if h["split"] == "train"]
    trained = load_file(str(result.adapter / "adapter_model.safetensors"))

    pairs, trainable = _pairs_and_trainable(model, ds, ft)  # a fresh base model
    losses, plain_lrs, plain = plain_lora(trainable, [pairs] * ft.epochs, ft, seed=0, warmup=2)
    assert plain_lrs == pytest.approx([5e-3, 1e-2, 1e-2, 5e-3]) and lrs == pytest.approx(plain_lrs)
    assert trainer_losses == pytest.approx(losses, rel=1e-5)
    assert losses[-1] < losses[0]
    assert trained.keys() == plain.keys() and trained
    for k in plain:
        assert torch.allclose(trained[k], plain[k], atol=1e-5), k
    assert result.recipe["first_step_lr"] == pytest.approx(5e-3) and result.recipe["warmup_steps"] == 2


@pytest.mark.parametrize("kw", [{"warmup_from_zero": True, "warmup_steps": 1}, {"lr": 0.0}])
def test_a_first_step_that_does_not_move_the_adapter_fails_the_run(tiny, tmp_path, kw):
    model, ds = tiny
    ft = FinetuneSpec(epochs=2, batch_size=4, rank=4, alpha=8, dropout=0.0, valid_split=None, **kw)
    pairs, trainable = _pairs_and_trainable(model, ds, ft)
    with pytest.raises(
        AffectbenchError, match=r"LoRA step 1: the adapter did not change over its first optimizer step"
    ):
        train_lora(trainable, pairs, [], ft, tmp_path / "g", seed=0)


def test_answer_only_loss_tokens_leave_out_the_end_of_turn(tiny):
    """loss_tokens answer: the labelled tokens decode to the answer alone; completion: answer + <|im_end|>."""
    from transformers import AutoTokenizer

    from affectbench.finetune.lora import PairCollator

    model, ds = tiny
    pairs, trainable = _pairs_and_trainable(model, ds, FinetuneSpec())
    tok = AutoTokenizer.from_pretrained(model["name"])
    for mode, end in (("answer", ""), ("completion", "<|im_end|>")):
        batch = PairCollator(trainable, 512, mode)(pairs)
        assert "loss_suffix_tokens" not in batch
        for row, p in zip(batch["labels"], pairs, strict=True):
            assert tok.decode([int(t) for t in row if t != -100]) == p.answer + end
