"""Model cards as data: the architectural facts (backbone size, encoders, fusion) of each model.

The packaged `model_cards.yaml` covers the models the benchmark knows; users add or replace
cards with their own YAML files. A run's model maps to a card by `options.card`, else by the
longest card `match` substring found in `ModelSpec.name`, else by `ModelSpec.backend`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.errors import ConfigError
from ..core.types import ALL_MODALITIES


class ModelCard(BaseModel):
    """What a model is made of. Unknown facts are None."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    family: str | None = None
    match: list[str] = Field(default_factory=list)
    backends: list[str] = Field(default_factory=list)
    llm: str | None = None
    llm_params_b: float | None = None
    total_params_b: float | None = None
    active_params_b: float | None = None
    vision_encoder: str | None = None
    audio_encoder: str | None = None
    fusion: str | None = None
    time_interleaved: bool | None = None
    modalities: str = "TAV"
    reference: str | None = None
    sources: dict[str, str] = Field(default_factory=dict)  # fact (field name) → where it was verified
    notes: str | None = None

    @field_validator("modalities")
    @classmethod
    def _modalities(cls, v: str) -> str:
        v = v.upper()
        if not v or set(v) - set(ALL_MODALITIES):
            raise ValueError(f"modalities must combine T, A, V; got {v!r}")
        return "".join(m for m in ALL_MODALITIES if m in v)

    def attributes(self) -> dict[str, Any]:
        """Numeric/boolean attributes for correlation with performance."""
        return {
            "llm_params_b": self.llm_params_b,
            "time_interleaved": None if self.time_interleaved is None else float(self.time_interleaved),
            "has_audio_encoder": float(self.audio_encoder is not None) if "A" in self.modalities else 0.0,
            "has_vision_encoder": float(self.vision_encoder is not None) if "V" in self.modalities else 0.0,
            "n_modalities": float(len(self.modalities)),
        }


def _norm(s: str) -> str:
    """Lower-case and drop separators so 'Qwen/Qwen2.5_Omni-7B' matches 'qwen2.5-omni-7b'."""
    return re.sub(r"[^a-z0-9.]", "", s.lower())


def _parse(data: Any, source: str) -> list[ModelCard]:
    if data is None:
        return []
    if isinstance(data, Mapping) and "cards" in data:
        data = data["cards"]
    if not isinstance(data, list):
        raise ConfigError(f"{source}: model cards must be a YAML list of mappings (or {{cards: [...]}})")
    cards = []
    for i, item in enumerate(data):
        try:
            cards.append(ModelCard.model_validate(item))
        except ValidationError as e:
            first = e.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise ConfigError(f"{source}: card #{i + 1} field {loc!r}: {first['msg']}; fix the YAML entry") from None
    return cards


def builtin_cards() -> list[ModelCard]:
    """The cards shipped with affectbench."""
    text = resources.files("affectbench.analysis").joinpath("model_cards.yaml").read_text(encoding="utf-8")
    return _parse(yaml.safe_load(text), "affectbench/analysis/model_cards.yaml")


def load_cards(paths: Iterable[str | Path] = (), builtin: bool = True) -> list[ModelCard]:
    """Built-in cards merged with users' YAML files; a later card with the same id replaces an earlier one."""
    merged: dict[str, ModelCard] = {c.id: c for c in builtin_cards()} if builtin else {}
    for p in paths:
        path = Path(p).expanduser()
        if not path.is_file():
            raise ConfigError(f"model card file {path} does not exist; pass an existing YAML file")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as e:
            raise ConfigError(f"model card file {path} is not valid YAML: {e}") from None
        for card in _parse(data, str(path)):
            merged[card.id] = card
    return list(merged.values())


def card_for(model: Any, cards: Iterable[ModelCard] | None = None) -> ModelCard | None:
    """The card of a ModelSpec (or its dict form), or None when no card matches."""
    cards = list(builtin_cards() if cards is None else cards)
    if isinstance(model, Mapping):
        name, backend, options = model.get("name", ""), model.get("backend", ""), model.get("options") or {}
    else:
        name, backend, options = model.name, model.backend, model.options or {}
    explicit = options.get("card")
    if explicit:
        for c in cards:
            if _norm(c.id) == _norm(str(explicit)):
                return c
        known = ", ".join(c.id for c in cards)
        raise ConfigError(f"model option card={explicit!r} names no known model card; use one of: {known}")
    n = _norm(name or "")
    best: tuple[int, ModelCard] | None = None
    if n:
        for c in cards:
            for m in [c.id, *c.match]:
                key = _norm(m)
                if key and key in n and (best is None or len(key) > best[0]):
                    best = (len(key), c)
    if best is not None:
        return best[1]
    b = (backend or "").lower()
    for c in cards:
        if b and b in [x.lower() for x in c.backends]:
            return c
    return None
