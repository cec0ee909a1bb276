"""The Model interface every backend implements."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path

from ..core.specs import GenerationSpec, MediaSpec, ModelSpec, canonical_json
from ..core.types import Generation, Message

Conversation = list[Message]


def sample_seed(run_seed: int, sample_id: str) -> int:
    """The sampling seed of one sample in a run: the first 4 bytes of sha256("<run_seed>:<sample_id>") as an
    unsigned int (0 … 2**32-1). It depends on nothing else, so batch size and order never change a sample's
    sampled answer, and each run seed gives a different draw."""
    return int.from_bytes(hashlib.sha256(f"{int(run_seed)}:{sample_id}".encode()).digest()[:4], "big")


class Model(ABC):
    """A backend: batches of conversations → Generations.

    `prepare` runs in the runner's worker pool ahead of the model (decode media, extract the
    audio track, compute perception cues) and must be thread-safe; `generate` gets whole
    batches. `score` returns, per conversation, the log-likelihood of each candidate answer.
    Backends with `accepts_seeds = True` take `generate(batch, gen, seeds=[...])`: one sampling seed per
    conversation (`sample_seed(run seed, sample id)`), applied so that batching does not change outputs.
    """

    accepts_seeds = False

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
