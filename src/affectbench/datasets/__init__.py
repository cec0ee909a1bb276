"""Dataset adapters, one module per on-disk layout."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from ..core.registry import DATASETS
from ..core.types import Sample
from .base import Dataset

__all__ = ["Dataset", "load_dataset", "select_samples"]


def load_dataset(name: str, root: str | Path | None = None, **options: Any) -> Dataset:
    """Open dataset `name` (see `affectbench ls datasets`) at `root`."""
    return DATASETS.load(name)(root, **options)


def select_samples(samples: list[Sample], limit: int | None, seed: int) -> list[Sample]:
    """A seeded random subset of `limit` samples, kept in dataset order (first-N would be biased)."""
    if limit is None or limit >= len(samples):
        return samples
    keep = set(random.Random(seed).sample(range(len(samples)), limit))
    return [s for i, s in enumerate(samples) if i in keep]
