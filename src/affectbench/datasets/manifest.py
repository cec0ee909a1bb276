"""Any corpus from a manifest file: CSV or JSONL with one row per clip.

Columns: `id`, `label` (required); `transcript` (or `text`), `video`, `audio` (paths relative to
the manifest), `split`, `group`, `speaker`, `start`, `end` (optional). Options: `file` (default:
the one of manifest.csv / manifest.jsonl present in root), `task` ("classification" or
"regression"), `labels` (list; inferred from the file, sorted, when not given) or `score_range`
([lo, hi], required for regression), `metric_suite`, `task_name`, `dataset_name`, `language`.
Without a `split` column every row is in split "test"; `dev` is read as `valid`.
"""

from __future__ import annotations

import json
import math
from functools import cached_property
from pathlib import Path
from typing import Any

from ..core.errors import DatasetError
from ..core.types import DatasetInfo, Sample, TaskType
from ._common import parse_float, read_csv
from .base import Dataset

REQUIRED = ("id", "label")
OPTIONAL = ("transcript", "text", "video", "audio", "split", "group", "speaker", "start", "end")
KNOWN = frozenset(REQUIRED + OPTIONAL)  # every other column goes to meta
DEFAULT_FILES = ("manifest.csv", "manifest.jsonl")
SPLIT_ALIASES = {"dev": "valid", "val": "valid", "validation": "valid"}
SPLIT_ORDER = ("train", "valid", "test")


class Manifest(Dataset):
    # Placeholder for listings; every instance replaces it with the info its manifest and options describe.
    info = DatasetInfo(
        corpus="manifest",
        task=TaskType.CLASSIFICATION,
        labels=("<from the manifest>",),
        description="any corpus from a CSV/JSONL manifest",
    )

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.warnings: list[str] = []
        self.path = self._find_file()
        self.info = self._build_info()  # type: ignore[misc]  # per-instance info, by design

    def label_files(self, split: str) -> list[Path]:
        return [self.path]

    def _find_file(self) -> Path:
        name = self.options.get("file")
        if name:
            path = Path(name) if Path(name).is_absolute() else self.root / name
            if not path.is_file():
                raise DatasetError(f"dataset 'manifest': manifest file {path} not found (option file)")
            return path
        found = [self.root / n for n in DEFAULT_FILES if (self.root / n).is_file()]
        if len(found) != 1:
            what = "none" if not found else "both"
            raise DatasetError(
                f"dataset 'manifest': {self.root} holds {what} of {', '.join(DEFAULT_FILES)}; "
                f"name the manifest with option file (a CSV or JSONL with columns {', '.join(REQUIRED + OPTIONAL)})"
            )
        return found[0]

    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """The manifest's rows (CSV cells as strings; JSONL values as written)."""
        expected = f"columns {', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)}"
        if self.path.suffix.lower() in {".jsonl", ".json", ".ndjson"}:
            rows = []
            try:
                lines = self.path.read_text(encoding="utf-8-sig").splitlines()
            except UnicodeDecodeError as e:
                raise DatasetError(f"dataset 'manifest': {self.path} is not UTF-8 text ({e})") from e
            for n, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise DatasetError(
                        f"dataset 'manifest': {self.path} line {n} is not a JSON object ({e}); expected {expected}"
                    ) from e
                if not isinstance(row, dict):
                    raise DatasetError(
                        f"dataset 'manifest': {self.path} line {n} is not a JSON object; expected {expected}"
                    )
                missing = [c for c in REQUIRED if c not in row]
                if missing:
                    raise DatasetError(
                        f"dataset 'manifest': {self.path} line {n} lacks {', '.join(missing)}; expected {expected}"
                    )
                rows.append(row)
        else:
            _, rows = read_csv(self.path, REQUIRED, str(self.options.get("dataset_name", "manifest")))
        return rows

    def _build_info(self) -> DatasetInfo:
        o = self.options
        name = str(o.get("dataset_name", "manifest"))
        task_opt = o.get("task") or ("regression" if o.get("score_range") is not None else "classification")
        try:
            task = TaskType(str(task_opt).lower())
        except ValueError:
            raise DatasetError(
                f"dataset {name!r}: option task must be classification or regression, got {task_opt!r}"
            ) from None
        splits = self._splits()
        common = dict(
            corpus=name,
            task=task,
            splits=splits,
            language=str(o.get("language", "en")),
            task_name=str(o.get("task_name", "")),
            description=f"manifest {self.path}",
        )
        if task is TaskType.CLASSIFICATION:
            labels = o.get("labels")
            if labels is None:
                labels = sorted({str(r["label"]).strip() for r in self.rows if str(r["label"]).strip()})
            labels = tuple(str(x) for x in labels)
            if not labels:
                raise DatasetError(f"dataset {name!r}: {self.path} has no labels; give option labels: [...]")
            return DatasetInfo(labels=labels, metric_suite=str(o.get("metric_suite", "classification")), **common)
        rng = o.get("score_range")
        try:
            lo, hi = (float(x) for x in rng)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            raise DatasetError(
                f"dataset {name!r}: a regression manifest needs option score_range: [lo, hi], got {rng!r}"
            ) from None
        suite = o.get("metric_suite") or {(-3.0, 3.0): "mosi", (-1.0, 1.0): "sims"}.get((lo, hi))
        if not suite:
            raise DatasetError(
                f"dataset {name!r}: no default metric suite for score_range [{lo}, {hi}]; set option metric_suite "
                "(mosi for [-3, 3] conventions, sims for [-1, 1])"
            )
        return DatasetInfo(score_range=(lo, hi), metric_suite=str(suite), **common)

    def _split_of(self, row: dict[str, Any]) -> str:
        raw = str(row.get("split") or "").strip().lower()
        if not raw:
            return "test"
        return SPLIT_ALIASES.get(raw, raw)

    def _splits(self) -> tuple[str, ...]:
        seen = {self._split_of(r) for r in self.rows}
        return tuple(s for s in SPLIT_ORDER if s in seen) + tuple(sorted(seen - set(SPLIT_ORDER)))

    def _media(self, value: Any) -> str | None:
        if value is None or not str(value).strip():
            return None
        p = Path(str(value).strip())
        return str(p if p.is_absolute() else self.path.parent / p)

    def _target(self, raw: Any) -> str | float | None:
        if self.info.task is TaskType.REGRESSION:
            return parse_float(raw)
        if raw is None or not str(raw).strip():
            return None
        text = str(raw).strip()
        folded = {lab.lower(): lab for lab in self.info.labels}
        return folded.get(text.lower(), text)

    def load(self, split: str) -> list[Sample]:
        self._check_split(split)
        samples = []
        for row in self.rows:
            if self._split_of(row) != split:
                continue
            media = {k: m for k in ("video", "audio") if (m := self._media(row.get(k))) is not None}
            start, end = parse_float(row.get("start")), parse_float(row.get("end"))
            span = (start, end) if start is not None and end is not None and not math.isnan(start + end) else None
            sid = str(row["id"]).strip()
            transcript = row.get("transcript")
            if transcript is None or (isinstance(transcript, str) and not transcript.strip() and "text" in row):
                transcript = row.get("text")
            samples.append(
                Sample(
                    id=sid,
                    transcript=str(transcript or "").strip(),
                    target=self._target(row.get("label")),
                    media=media,
                    group=str(row.get("group") or "").strip() or sid,
                    speaker=str(row.get("speaker") or "").strip() or None,
                    span=span,
                    meta={k: v for k, v in row.items() if k not in KNOWN},
                )
            )
        return samples
