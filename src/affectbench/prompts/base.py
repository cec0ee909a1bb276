"""The Prompt interface: render a Sample to chat Messages and parse the answer back."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ..core.types import DatasetInfo, Message, Parsed, Sample


class Prompt(ABC):
    """Render and parse live together: they are inverses.

    `render` attaches only the modalities in `modalities` ("T", "A", "V"); `knowledge`, when
    given, fills the template's knowledge slot. `answer` gives the canonical answer string for
    a target (what fine-tuning trains on, and what `parse` accepts).
    """

    name: str
    version: str

    @abstractmethod
    def render(
        self,
        sample: Sample,
        info: DatasetInfo,
        *,
        knowledge: str | None = None,
        modalities: str = "TAV",
        system: str | None = None,
    ) -> list[Message]: ...

    @abstractmethod
    def parse(self, text: str, info: DatasetInfo) -> Parsed: ...

    @abstractmethod
    def answer(self, target: str | float, info: DatasetInfo) -> str: ...

    @abstractmethod
    def options(self, info: DatasetInfo) -> list[str]:
        """Candidate answer strings for log-likelihood scoring (labels, or the score grid)."""
