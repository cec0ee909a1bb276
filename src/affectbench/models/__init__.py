"""Model backends behind one interface (see base.Model)."""

from __future__ import annotations

from pathlib import Path

from ..core.registry import MODELS
from ..core.specs import MediaSpec, ModelSpec
from .base import Conversation, Model

__all__ = ["Conversation", "Model", "build_model", "weights_provenance"]


def build_model(spec: ModelSpec, media: MediaSpec | None = None, workspace: Path | None = None) -> Model:
    """Instantiate the backend named by `spec.backend`."""
    return MODELS.load(spec.backend)(spec, media, workspace)


def weights_provenance(name: str, revision: str | None) -> dict:
    """Where the weights of model `name` come from (local folder digest or resolved hub commit),
    without loading them; see `_hub.resolve_weights`."""
    from ._hub import resolve_weights
    from .hf import WEIGHT_FILES

    return resolve_weights(name, revision, WEIGHT_FILES)
