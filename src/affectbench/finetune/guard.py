"""Fine-tuning that provably trains (issue 23): every optimizer step must have finite gradients, and the
first optimizer step of a training segment must change the trainable tensors.

A LoRA step must not apply non-finite gradients: it would silently turn the adapter into NaNs.
Seen on a tiny Gemma 3n: the random init leaves the pad token's embedding row all zeros, and on a
left-padded batch the gradient through the normalisations at the pad positions is 0/0. Released
checkpoints have a non-zero pad row, but any such row (or an overflow in fp16) gives the same.

An adapter that its first step leaves unchanged is not training (transformers #42489: gradient
checkpointing over frozen embeddings gives the LoRA layers no gradient; lr 0 at a warm-up's first step).

`step_guard()` is the one Trainer callback that checks both, used by generative SFT (`lora.train_lora`)
and the readout's LoRA + head (`readout` method `lora_head`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..core.errors import AffectbenchError


def check_finite_step(step: int, loss: float, params: Iterable[Any]) -> None:
    """Raise AffectbenchError (the optimizer step must then be skipped) when the step's loss or any
    gradient of `params` (the trainable tensors) is NaN or infinite. `step` is 1-based, for the message."""
    import torch

    bad = not math.isfinite(loss) or any(p.grad is not None and not bool(torch.isfinite(p.grad).all()) for p in params)
    if bad:
        raise AffectbenchError(
            f"LoRA step {step}: non-finite loss ({loss}) or gradients; the step was not applied. A zero "
            "embedding row for the pad token gives NaN gradients on left-padded batches (seen on a tiny "
            "Gemma 3n): give that row non-zero weights or use batch_size 1"
        )


def adapter_snapshot(named_params: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """Copies of the trainable tensors (name → tensor), to compare after an optimizer step."""
    return {name: p.detach().clone() for name, p in named_params if p.requires_grad}


def check_adapter_moved(
    step: int, before: dict[str, Any], named_params: Iterable[tuple[str, Any]], lr: float
) -> dict[str, Any]:
    """Raise AffectbenchError when no trainable tensor changed over optimizer step `step` (1-based);
    else return the step's figures: {"step", "lr", "tensors" (trainable tensors compared), "moved" (those
    that changed), "max_abs_change" (largest element change, float; None when nothing was compared here)}.

    An adapter that an optimizer step leaves exactly as it was is not training: lr 0 at that step
    (transformers' linear warm-up starts at 0), no gradient reaching the LoRA layers (gradient
    checkpointing over frozen embeddings without input grads, transformers #42489), or parameters
    the optimizer does not hold. `lr` is the learning rate the step ran at, for the message."""
    now = {name: p for name, p in named_params if name in before}
    if not now:
        raise AffectbenchError(f"LoRA step {step}: the model has no trainable adapter tensors")
    now = {name: p for name, p in now.items() if p.numel() and before[name].numel()}
    figures: dict[str, Any] = {"step": step, "lr": lr, "tensors": len(now), "moved": 0, "max_abs_change": None}
    if not now:
        return figures  # every tensor partitioned away from this rank (DeepSpeed ZeRO-3): nothing to compare
    changes = [float((p.detach().float() - before[name].float()).abs().max()) for name, p in now.items()]
    figures.update(moved=sum(c > 0 for c in changes), max_abs_change=max(changes))
    if not figures["moved"]:
        raise AffectbenchError(
            f"LoRA step {step}: the adapter did not change over its first optimizer step (lr {lr:g}; "
            f"{len(now)} trainable tensors). With finetune.warmup_from_zero the first warm-up step runs at lr 0: "
            "set warmup_from_zero: false (or warmup_steps: 0); otherwise no gradient reaches the adapter "
            "(gradient checkpointing needs input grads: transformers #42489)"
        )
    return figures


def step_guard():
    """A transformers `TrainerCallback` that raises AffectbenchError before an optimizer step with
    non-finite gradients (`check_finite_step`, after clipping: transformers calls `on_pre_optimizer_step`
    there) and after a first optimizer step of the segment (a resumed run: its first step after the
    checkpoint) that changed no trainable tensor (`check_adapter_moved`). Its `figures` are then that
    first step's figures (None until it ran). Every trainable tensor counts (LoRA, and a readout head
    trained in full); `lr` is the first parameter group's."""
    from transformers import TrainerCallback

    class StepGuard(TrainerCallback):
        def __init__(self) -> None:
            self.figures: dict[str, Any] | None = None
            self._first: tuple[int, float, dict[str, Any]] | None = None

        def on_pre_optimizer_step(self, args, state, control, model=None, optimizer=None, **kw):
            check_finite_step(state.global_step + 1, 0.0, (p for p in model.parameters() if p.requires_grad))
            if self.figures is None and self._first is None:
                lr = float(optimizer.param_groups[0]["lr"]) if optimizer is not None else math.nan
                self._first = (state.global_step + 1, lr, adapter_snapshot(model.named_parameters()))

        def on_optimizer_step(self, args, state, control, model=None, **kw):
            if self._first is not None:
                step, lr, before = self._first
                self._first = None
                self.figures = check_adapter_moved(step, before, model.named_parameters(), lr)

    return StepGuard()
