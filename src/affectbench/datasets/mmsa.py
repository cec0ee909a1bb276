"""CMU-MOSI, CMU-MOSEI, CH-SIMS and CH-SIMS v2 in the MMSA layout.

`<root>/label.csv` (read by column name; ids stay strings so `0001` keeps its zeros) and
`<root>/Raw/<video_id>/<clip_id>.mp4`. The split is the `mode` column. Subclasses only set `info`.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from ..core.types import DatasetInfo, Sample, TaskType
from ._common import parse_float, read_csv
from .base import Dataset

REQUIRED = ("video_id", "clip_id", "text", "label", "mode")
UNIMODAL = ("label_T", "label_A", "label_V")
SUITES = {"mosi": (3.0, "en"), "sims": (1.0, "zh")}  # metric suite -> (score scale, language)


class MMSADataset(Dataset):
    """Reader for any corpus in the MMSA layout; subclasses set `info` (and may rename `label_file`)."""

    label_file: ClassVar[str] = "label.csv"
    media_dir: ClassVar[str] = "Raw"

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.warnings: list[str] = []  # layout oddities that do not stop loading; `data check` shows them

    def label_files(self, split: str) -> list[Path]:
        return [self.root / self.label_file]

    @cached_property
    def _rows(self) -> list[dict[str, str]]:
        _, rows = read_csv(self.root / self.label_file, REQUIRED, self.info.corpus)
        modes = {r["mode"].strip() for r in rows} - set(self.splits())
        if modes:
            self.warnings.append(
                f"{self.root / self.label_file}: rows with mode {', '.join(sorted(modes))} belong to no split "
                f"(expected {', '.join(self.splits())})"
            )
        return rows

    def load(self, split: str) -> list[Sample]:
        self._check_split(split)
        return [self._sample(r) for r in self._rows if r["mode"].strip() == split]

    def _sample(self, row: dict[str, str]) -> Sample:
        video_id, clip_id = row["video_id"].strip(), row["clip_id"].strip()
        label = parse_float(row["label"])
        meta: dict[str, object] = {"video_id": video_id, "clip_id": clip_id, "mode": row["mode"].strip()}
        for col in UNIMODAL:
            if col in row:
                meta[col] = parse_float(row[col])
        if "annotation" in row:
            meta["annotation"] = row["annotation"].strip() or None
        return Sample(
            id=f"{video_id}$_${clip_id}",
            transcript=row["text"].strip(),
            target=label,
            media={"video": str(self.root / self.media_dir / video_id / f"{clip_id}.mp4")},
            group=video_id,
            meta=meta,
        )


def sentiment_info(name: str, description: str, suite: str = "mosi") -> DatasetInfo:
    """The DatasetInfo of an MMSA-layout sentiment corpus scored with `suite`: "mosi" (English,
    [-3, 3]) or "sims" (Chinese, [-1, 1], unimodal labels)."""
    scale, language = SUITES[suite]
    return DatasetInfo(
        corpus=name,
        task=TaskType.REGRESSION,
        score_range=(-scale, scale),
        language=language,
        metric_suite=suite,
        task_name="sentiment",
        description=description,
    )


class MOSI(MMSADataset):
    info = sentiment_info("mosi", "CMU-MOSI: 2199 opinion clips from YouTube, sentiment in [-3, 3]")


class MOSEI(MMSADataset):
    info = sentiment_info("mosei", "CMU-MOSEI: 22856 opinion clips from YouTube, sentiment in [-3, 3]")


class SIMS(MMSADataset):
    info = sentiment_info(
        "sims", "CH-SIMS: Chinese clips, sentiment in [-1, 1] with unimodal labels label_T/A/V", "sims"
    )


class SIMSv2(MMSADataset):
    info = sentiment_info(
        "simsv2", "CH-SIMS v2: Chinese clips, sentiment in [-1, 1] with unimodal labels label_T/A/V", "sims"
    )
