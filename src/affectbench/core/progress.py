"""Terminal progress display (rich), shared by the runner and fine-tuning; a no-op when disabled."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class progress_bar:
    """A rich progress bar with rate and ETA; a no-op when disabled."""

    def __init__(self, enabled: bool, label: str, total: int, completed: int, unit: str = "samples") -> None:
        self.enabled, self.label, self.total, self.completed, self.unit = enabled, label, total, completed, unit
        self._progress: Any = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        )
        self._progress.start()
        task = self._progress.add_task(self.label, total=self.total, completed=self.completed, rate="")
        start, count = time.perf_counter(), [0]

        def advance(n: int) -> None:
            count[0] += n
            rate = count[0] / max(time.perf_counter() - start, 1e-9)
            self._progress.update(task, advance=n, rate=f"{rate:.1f} {self.unit}/s")

        return advance

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
