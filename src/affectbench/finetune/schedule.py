"""The learning-rate schedule of a FinetuneSpec: warm-up, then linear / cosine decay or constant.

`lr_factor(ft, step, total)` is the multiplier of `ft.lr` at optimizer step `step` (0-based) of
`total`. Warm-up over W steps: with `warmup_from_zero` it is transformers'
`get_linear_schedule_with_warmup` (step / W: the first step runs at lr 0, so it cannot move the
adapter); otherwise (step + 1) / W, the hand-written loop this project had before the Trainer
(first step at lr / W, full lr at the last warm-up step). After the warm-up: linear decay
(total - step) / (total - W), cosine 0.5 (1 + cos(pi (step - W) / (total - W))) — both as in
transformers.optimization — or constant 1.
"""

from __future__ import annotations

import math

from ..core.specs import FinetuneSpec


def warmup_steps(ft: FinetuneSpec, total: int) -> int:
    """Warm-up length in optimizer steps: `ft.warmup_steps` when set, else floor(warmup_ratio × total)."""
    return ft.warmup_steps if ft.warmup_steps is not None else int(ft.warmup_ratio * total)


def lr_factor(ft: FinetuneSpec, step: int, total: int) -> float:
    """Multiplier of `ft.lr` at optimizer step `step` (0-based) of `total`."""
    warm = warmup_steps(ft, total)
    if step < warm:
        return (step if ft.warmup_from_zero else step + 1) / warm
    if ft.lr_scheduler == "constant":
        return 1.0
    rest = max(1, total - warm)
    if ft.lr_scheduler == "cosine":
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * (step - warm) / rest)))
    return max(0.0, (total - step) / rest)


def lr_scheduler(optimizer, ft: FinetuneSpec, total: int):
    """A torch LambdaLR that applies `lr_factor` to every parameter group of `optimizer`."""
    from torch.optim.lr_scheduler import LambdaLR

    return LambdaLR(optimizer, lambda step: lr_factor(ft, step, total))


class RecipeSchedule:
    """Mixin for a transformers `Trainer` subclass: its scheduler is `lr_scheduler` of `self.recipe` (a
    FinetuneSpec), not the Trainer's own (whose linear warm-up runs the first step at lr 0)."""

    recipe: FinetuneSpec

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        if self.lr_scheduler is None:
            self.lr_scheduler = lr_scheduler(optimizer or self.optimizer, self.recipe, num_training_steps)
            self._created_lr_scheduler = True  # the Trainer steps a scheduler it created itself
        return self.lr_scheduler
