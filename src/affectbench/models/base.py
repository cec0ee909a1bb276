"""The Model interface every backend implements."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path

from ..specs import GenerationSpec, MediaSpec, ModelSpec, canonical_json
from ..types import Generation, Message

Conversation = list[Message]


class Model(ABC):
    """A backend: batches of conversations → Generations.

    `prepare` runs in the runner's worker pool ahead of the model (decode media, extract the
    audio track, compute perception cues) and must be thread-safe; `generate` gets whole
    batches. `score` returns, per conversation, the log-likelihood of each candidate answer.
    """

    def __init__(self, spec: ModelSpec, media: MediaSpec | None = None, workspace: Path | None = None) -> None:
        self.spec = spec
        self.media = media or MediaSpec()
        self.workspace = workspace

    def fingerprint(self) -> str:
        """Identity of the weights + adapter + settings that shape outputs."""
        return hashlib.sha256(canonical_json(self.spec.identity()).encode()).hexdigest()[:16]

    def weights(self) -> dict:
        """Where the weights come from (local folder digest, or hub id → resolved commit); {} if not applicable."""
        return {}

    def prepare(self, conversation: Conversation) -> Conversation:
        return conversation

    @abstractmethod
    def generate(self, batch: list[Conversation], gen: GenerationSpec) -> list[Generation]: ...

    def score(self, batch: list[Conversation], options: list[str], gen: GenerationSpec) -> list[Generation]:
        raise NotImplementedError(f"backend {self.spec.backend!r} cannot score candidate answers; use mode: generate")

    def info(self) -> dict:
        """Library versions, device and settings recorded with each run."""
        return {}

    def close(self) -> None:
        pass
