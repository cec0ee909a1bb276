"""Dataset adapters, one module per on-disk layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..registry import DATASETS
from .base import Dataset

__all__ = ["Dataset", "load_dataset"]


def load_dataset(name: str, root: str | Path | None = None, **options: Any) -> Dataset:
    """Open dataset `name` (see `affectbench ls datasets`) at `root`."""
    return DATASETS.load(name)(root, **options)
