"""The Dataset interface: read a corpus's own on-disk layout into Samples."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from ..core.errors import DatasetError
from ..core.types import DatasetInfo, Sample


class Dataset(ABC):
    """A dataset adapter. Subclasses set `info` and implement `load`.

    `root` is the folder of the user's copy; `options` are adapter settings (e.g. `fold`,
    `trust_pickles`). Adapters raise DatasetError with one sentence naming the file and what
    was expected — never a bare pandas or KeyError traceback.
    """

    info: ClassVar[DatasetInfo]

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        if root is None:
            raise DatasetError(f"dataset {self.info.corpus!r} needs a root folder (root=... or --root DIR)")
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(f"dataset {self.info.corpus!r}: root folder {self.root} does not exist")
        self.options = options

    @abstractmethod
    def load(self, split: str) -> list[Sample]:
        """All samples of `split`, in a stable order."""

    def label_files(self, split: str) -> list[Path]:
        """The files whose content defines `split`'s samples and targets (fingerprinted with every run,
        so a resume after a label edit is refused). Adapters list what they parse; default none."""
        return []

    def disambiguate_ids(self, split: str, samples: list[Sample]) -> list[Sample]:
        """`samples` of `split` with repeated ids made unique the adapter's way, or unchanged.

        Sample ids key every stored prediction, so the engine refuses a split whose ids repeat before any
        model runs (`engine.select.unique_ids`). An adapter whose published ids are known to repeat and
        that knows how to tell the rows apart (e.g. by a segment index) overrides this; the default
        declares no such rule."""
        return samples

    def protocol(self, split: str) -> dict[str, Any]:
        """The named protocol this adapter applies to `split` and what it drops by it:
        {"name": str, "dropped": {raw label: count}} (empty when it keeps every labelled row). Recorded
        with each run and shown by `data check` next to the kept count of each class."""
        return {"name": "", "dropped": {}}

    def split_scheme(self) -> str:
        """How this adapter's options partition the corpus, beyond the options themselves ("" when they
        say it all); recorded with each run and part of its corpus identity (`analysis.corpus`)."""
        return ""

    def describe_split(self, split: str) -> str:
        """Which split (and fold) `split` means for this adapter's options, in words; recorded with
        each run so a report can name what a number used."""
        return split

    def splits(self) -> tuple[str, ...]:
        return self.info.splits

    def _check_split(self, split: str) -> None:
        if split not in self.splits():
            raise DatasetError(
                f"dataset {self.info.corpus!r} has no split {split!r}; splits: {', '.join(self.splits())}"
            )
