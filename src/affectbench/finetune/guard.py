"""A LoRA step must not apply non-finite gradients: it would silently turn the adapter into NaNs.

Seen on a tiny Gemma 3n: the random init leaves the pad token's embedding row all zeros, and on a
left-padded batch the gradient through the normalisations at the pad positions is 0/0. Released
checkpoints have a non-zero pad row, but any such row (or an overflow in fp16) gives the same.
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


def check_adapter_moved(step: int, before: dict[str, Any], named_params: Iterable[tuple[str, Any]], lr: float) -> None:
    """Raise AffectbenchError when no trainable tensor changed over optimizer step `step` (1-based).

    An adapter that an optimizer step leaves exactly as it was is not training: lr 0 at that step
    (transformers' linear warm-up starts at 0), no gradient reaching the LoRA layers (gradient
    checkpointing over frozen embeddings without input grads, transformers #42489), or parameters
    the optimizer does not hold. `lr` is the learning rate the step ran at, for the message."""
    import torch

    now = {name: p for name, p in named_params if name in before}
    if not now:
        raise AffectbenchError(f"LoRA step {step}: the model has no trainable adapter tensors")
    now = {name: p for name, p in now.items() if p.numel() and before[name].numel()}
    if not now:
        return  # every tensor partitioned away from this rank (DeepSpeed ZeRO-3): nothing to compare here
    if all(torch.equal(before[name], p.detach()) for name, p in now.items()):
        raise AffectbenchError(
            f"LoRA step {step}: the adapter did not change over its first optimizer step (lr {lr:g}; "
            f"{len(now)} trainable tensors). With finetune.warmup_from_zero the first warm-up step runs at lr 0: "
            "set warmup_from_zero: false (or warmup_steps: 0); otherwise no gradient reaches the adapter "
            "(gradient checkpointing needs input grads: transformers #42489)"
        )
