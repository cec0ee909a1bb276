"""affectbench: benchmark and boost multimodal LLMs on multimodal affective computing.

Importing this package is cheap: heavy dependencies load inside the functions that use them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .datasets import Dataset


def load_dataset(name: str, root: Any = None, **options: Any) -> Dataset:
    """Open dataset `name` at `root`; `.load(split)` gives its Samples."""
    from .datasets import load_dataset as _load

    return _load(name, root, **options)
