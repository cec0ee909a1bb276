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
