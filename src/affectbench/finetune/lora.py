"""The LoRA training loop (peft): answer-masked loss, validation loss per epoch, best-epoch
selection, a checkpoint every N optimizer steps and at each epoch end, resume after a kill.

Runs single process (CPU or one GPU) and, unchanged, under `torchrun` / `accelerate launch`
(DDP): each rank takes its share of every optimizer step's examples, gradients are averaged,
and only rank 0 writes logs, checkpoints and the adapter.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..specs import FinetuneSpec
from .backends import Trainable, lm_linear_modules
from .guard import check_finite_step
from .pairs import Pair

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 50  # optimizer steps between checkpoints (env AFFECTBENCH_CHECKPOINT_STEPS overrides)


@dataclass
class TrainResult:
    adapter: Path
    best_epoch: int
    best_valid_loss: float | None
    first_train_loss: float
    last_train_loss: float
    steps: int
    resumed_from_step: int
    wall_s: float
    history: list[dict[str, Any]] = field(default_factory=list)


class Interrupt(Exception):
    """Raised by the test hook `stop_after_steps` to simulate a kill."""


def _dist():
    """(rank, world, torch.distributed or None); initialises the process group under torchrun/accelerate."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, None
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size(), dist


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _steps(n: int, per_step: int) -> int:
    return max(1, math.ceil(n / per_step))


def _save_state(ckpt: Path, model, optimizer, state: dict[str, Any]) -> None:
    """Write adapter + optimizer + counters to a temp folder, then swap it in (no half-written checkpoint)."""
    import torch

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(), **state}, tmp / "state.pt")
    old = ckpt.with_name(ckpt.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        ckpt.rename(old)
    tmp.rename(ckpt)
    shutil.rmtree(old, ignore_errors=True)


def _load_state(ckpt: Path, model, optimizer) -> dict[str, Any] | None:
    import torch
    from peft import set_peft_model_state_dict

    state_file = ckpt / "state.pt"
    if not state_file.is_file():
        return None
    weights = ckpt / "adapter_model.safetensors"
    if weights.is_file():
        from safetensors.torch import load_file

        sd = load_file(str(weights))
    else:
        sd = torch.load(ckpt / "adapter_model.bin", map_location="cpu")
    set_peft_model_state_dict(model, sd)
    state = torch.load(state_file, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(state.pop("optimizer"))
    torch.set_rng_state(state.pop("torch_rng"))
    return state


def answer_loss(model: Any, inputs: dict[str, Any]):
    """Mean cross-entropy over the answer tokens, computing logits only where labels are.

    Labels sit at the end of left-padded rows, so the vocabulary projection (the largest matmul
    of a small LLM with a big vocabulary) runs for a handful of positions instead of the prompt.
    Equal to the model's own `labels=` loss.
    """
    import torch.nn.functional as F

    labels = inputs["labels"]
    width = labels.shape[1]
    cols = (labels != -100).any(0).nonzero()
    if len(cols) == 0:
        return model(**inputs).loss
    keep = width - int(cols.min()) + 1
    kwargs = {k: v for k, v in inputs.items() if k != "labels"}
    logits = model(**kwargs, logits_to_keep=keep).logits[:, -keep:]  # a model may ignore logits_to_keep
    target = labels[:, width - keep + 1 :]
    return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=-100)


def train_lora(
    trainable: Trainable,
    train: list[Pair],
    valid: list[Pair],
    ft: FinetuneSpec,
    out_dir: Path,
    *,
    seed: int = 0,
    log_fn: Callable[..., None] | None = None,
    checkpoint_every: int | None = None,
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Train a LoRA adapter on `train`, select the epoch with the lowest validation loss.

    `out_dir` holds `checkpoint/` (resume state), `best/` and `final/`; the returned adapter is
    `best/` when there is a validation split, else `final/`. `log_fn(step, split, loss, epoch, **meta)`
    receives train losses per optimizer step and the validation loss per epoch.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    t0 = time.perf_counter()
    if checkpoint_every is None:
        checkpoint_every = int(os.environ.get("AFFECTBENCH_CHECKPOINT_STEPS", CHECKPOINT_EVERY))
    rank, world, dist = _dist()
    is_main = rank == 0
    seed_everything(seed)
    base = trainable.module
    if isinstance(ft.target_modules, str) and ft.target_modules == "all-linear":
        targets: list[str] | str = lm_linear_modules(base, ft.train_towers)
    else:
        targets = ft.target_modules
    config = LoraConfig(
        r=ft.rank, lora_alpha=ft.alpha, lora_dropout=ft.dropout, target_modules=targets, task_type="CAUSAL_LM"
    )
    model = get_peft_model(base, config)
    if ft.train_towers:
        pass  # LoRA layers were placed on the towers' Linear layers too; base weights stay frozen
    ddp_model = model
    if dist is not None:
        from torch.nn.parallel import DistributedDataParallel

        dev = torch.device(trainable.device)
        ddp_model = DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None, find_unused_parameters=True
        )
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=ft.lr, weight_decay=0.0)
    per_step = ft.batch_size * ft.grad_accum
    steps_per_epoch = _steps(len(train), per_step)
    total = steps_per_epoch * ft.epochs
    ckpt = out_dir / "checkpoint"
    state = _load_state(ckpt, model, optimizer) if ckpt.exists() else None
    step = state["step"] if state else 0
    best_loss = state.get("best_loss") if state else None
    best_epoch = state.get("best_epoch", -1) if state else -1
    history: list[dict[str, Any]] = state.get("history", []) if state else []
    resumed = step
    if resumed:
        log.info("finetune: resuming from step %d of %d", step, total)

    def lr_at(s: int) -> float:  # linear warm-up over 5% of steps, then linear decay
        warm = max(1, int(0.05 * total))
        return ft.lr * (s + 1) / warm if s < warm else ft.lr * max(0.0, (total - s) / max(1, total - warm))

    def micro_batches(items: list[Pair]) -> list[list[Pair]]:
        share = items[rank::world] or items[:1]
        chunks = [share[i : i + ft.batch_size] for i in range(0, len(share), ft.batch_size)]
        if world > 1:  # every rank must run the same number of backward passes
            n_max = math.ceil(math.ceil(len(items) / world) / ft.batch_size)
            chunks += [[]] * (n_max - len(chunks))
        return chunks

    def forward(chunk: list[Pair], weight: float):
        batch = [trainable.prepare(p.conversation) for p in (chunk or train[:1])]
        inputs = trainable.encode(batch, [p.answer for p in (chunk or train[:1])])
        return answer_loss(ddp_model, inputs) * (weight if chunk else 0.0)

    def valid_loss() -> float | None:
        if not valid:
            return None
        model.eval()
        tot, cnt = 0.0, 0
        with torch.no_grad():
            for chunk in micro_batches(valid):
                if not chunk:
                    continue
                batch = [trainable.prepare(p.conversation) for p in chunk]
                inputs = trainable.encode(batch, [p.answer for p in chunk])
                n_tok = int((inputs["labels"] != -100).sum())
                tot += float(answer_loss(model, inputs)) * n_tok
                cnt += n_tok
        if dist is not None:
            t = torch.tensor([tot, float(cnt)], device=trainable.device)
            dist.all_reduce(t)
            tot, cnt = float(t[0]), int(t[1])
        model.train()
        return tot / max(cnt, 1)

    def save_adapter(name: str) -> Path:
        path = out_dir / name
        tmp = out_dir / (name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)
        return path

    model.train()
    first_loss = last_loss = math.nan
    for h in history:
        if h["split"] == "train":
            first_loss = h["loss"] if math.isnan(first_loss) else first_loss
            last_loss = h["loss"]
    for epoch in range(step // steps_per_epoch, ft.epochs):
        order = list(range(len(train)))
        random.Random(seed * 1000 + epoch).shuffle(order)
        for s_in_epoch in range(step - epoch * steps_per_epoch, steps_per_epoch):
            items = [train[i] for i in order[s_in_epoch * per_step : (s_in_epoch + 1) * per_step]]
            for g in optimizer.param_groups:
                g["lr"] = lr_at(step)
            chunks = micro_batches(items)
            loss_sum = 0.0
            for chunk in chunks:
                loss = forward(chunk, 1.0 / len(chunks))
                loss.backward()
                loss_sum += float(loss.detach())
            check_finite_step(step + 1, loss_sum, params)
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if dist is not None:
                t = torch.tensor([loss_sum], device=trainable.device)
                dist.all_reduce(t)
                loss_sum = float(t[0]) / world
            first_loss = loss_sum if math.isnan(first_loss) else first_loss
            last_loss = loss_sum
            ep = epoch + (s_in_epoch + 1) / steps_per_epoch
            history.append({"step": step, "split": "train", "loss": loss_sum, "epoch": ep})
            if is_main and log_fn:
                log_fn(step, "train", loss_sum, ep, lr=lr_at(step - 1))
            end_of_epoch = s_in_epoch + 1 == steps_per_epoch
            if end_of_epoch:
                vl = valid_loss()
                if vl is not None:
                    history.append({"step": step, "split": "valid", "loss": vl, "epoch": epoch + 1})
                    if is_main and log_fn:
                        log_fn(step, "valid", vl, epoch + 1)
                    if best_loss is None or vl < best_loss:
                        best_loss, best_epoch = vl, epoch + 1
                        if is_main:
                            save_adapter("best")
            if is_main and (end_of_epoch or step % max(1, checkpoint_every) == 0):
                _save_state(
                    ckpt,
                    model,
                    optimizer,
                    {"step": step, "best_loss": best_loss, "best_epoch": best_epoch, "history": history},
                )
            if stop_after_steps is not None and step - resumed >= stop_after_steps and step < total:
                raise Interrupt(f"stopped after {step} steps (test hook)")
    adapter = out_dir / "best"
    if is_main:
        final = save_adapter("final")
        if not valid or not (out_dir / "best").exists():
            adapter, best_epoch = final, ft.epochs
        card = {
            "base": trainable.base,
            "finetune": ft.model_dump(mode="json"),
            "best_epoch": best_epoch,
            "best_valid_loss": best_loss,
            "steps": step,
        }
        (adapter / "affectbench_finetune.json").write_text(json.dumps(card, indent=2))
    if dist is not None:
        dist.barrier()
    return TrainResult(
        adapter=adapter,
        best_epoch=best_epoch,
        best_valid_loss=best_loss,
        first_train_loss=first_loss,
        last_train_loss=last_loss,
        steps=step,
        resumed_from_step=resumed,
        wall_s=round(time.perf_counter() - t0, 2),
        history=history,
    )
