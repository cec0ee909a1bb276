"""Model backends behind one interface (see base.Model)."""

from __future__ import annotations

from pathlib import Path

from ..registry import MODELS
from ..specs import MediaSpec, ModelSpec
from .base import Conversation, Model

__all__ = ["Conversation", "Model", "build_model"]


def build_model(spec: ModelSpec, media: MediaSpec | None = None, workspace: Path | None = None) -> Model:
    """Instantiate the backend named by `spec.backend`."""
    return MODELS.load(spec.backend)(spec, media, workspace)
