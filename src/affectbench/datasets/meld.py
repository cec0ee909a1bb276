"""MELD (Friends dialogues): 7-way emotion and 3-way sentiment per utterance.

`<root>/{train,dev,test}_sent_emo.csv` and clips `dia{Dialogue_ID}_utt{Utterance_ID}.mp4` in
`train_splits/`, `dev_splits_complete/`, `output_repeated_splits_test/` (other common names and
any letter case are accepted, or set option `clip_dirs: {train: ..., valid: ..., test: ...}`).
Context = the earlier utterances of the same dialogue; the CSVs' mis-encoded apostrophes
(UTF-8 read as cp1252, e.g. "â€™") are repaired. Dialogue ids restart in every split, so sample
ids and groups carry the split: `train_dia0_utt0`, group `train_dia0`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

from ..core.errors import DatasetError
from ..core.types import DatasetInfo, Sample, TaskType, Turn
from ._common import find_dir, read_csv, repair_mojibake
from .base import Dataset

REQUIRED = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
CSV_FILES = {"train": "train_sent_emo.csv", "valid": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
# Optional CSV columns copied into meta; StartTime/EndTime are positions in the episode (hh:mm:ss,ms), not in the clip.
OPTIONAL_META = (
    ("Sr No.", "sr_no"),
    ("Season", "season"),
    ("Episode", "episode"),
    ("StartTime", "start_time"),
    ("EndTime", "end_time"),
)
CLIP_DIRS = {
    "train": ("train_splits", "train_splits_complete", "train"),
    "valid": ("dev_splits_complete", "dev_splits", "dev", "valid"),
    "test": ("output_repeated_splits_test", "test_splits_complete", "test_splits", "test"),
}

# Defects of the official MELD.Raw release, by sample id: `data check` reports them as known.
KNOWN_DEFECTS: dict[str, str] = {
    "valid_dia110_utt7": "known MELD defect: dev_splits_complete/dia110_utt7.mp4 is missing from the official release",
    "train_dia125_utt3": "known MELD defect: train_splits/dia125_utt3.mp4 is corrupt in the official release",
}


class MELD(Dataset):
    """Shared reader; `label_column` picks the task (Emotion or Sentiment)."""

    label_column: ClassVar[str] = "Emotion"
    known_defects: ClassVar[dict[str, str]] = KNOWN_DEFECTS

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.warnings: list[str] = []
        # The MELD.Raw tarball unpacks into a MELD.Raw/ folder; accept its parent as root too.
        if not (self.root / CSV_FILES["train"]).is_file() and (self.root / "MELD.Raw").is_dir():
            self.root = self.root / "MELD.Raw"

    def label_files(self, split: str) -> list[Path]:
        return [self.root / CSV_FILES[split]]

    def clip_dir(self, split: str) -> Path:
        """The folder holding `split`'s clips (the canonical name when none exists, so check reports them missing)."""
        custom = (self.options.get("clip_dirs") or {}).get(split)
        if custom:
            return self.root / custom
        return find_dir(self.root, CLIP_DIRS[split]) or self.root / CLIP_DIRS[split][0]

    def load(self, split: str) -> list[Sample]:
        self._check_split(split)
        path = self.root / CSV_FILES[split]
        _, rows = read_csv(path, REQUIRED, self.info.corpus, encodings=("utf-8-sig", "cp1252"))
        clips = self.clip_dir(split)
        parsed = []
        for line, row in enumerate(rows, start=2):
            try:
                dia, utt = int(row["Dialogue_ID"]), int(row["Utterance_ID"])
            except ValueError:
                raise DatasetError(
                    f"dataset {self.info.corpus!r}: {path} line {line}: Dialogue_ID and Utterance_ID must be "
                    f"integers, got {row['Dialogue_ID']!r}, {row['Utterance_ID']!r}"
                ) from None
            turn = Turn(repair_mojibake(row["Utterance"].strip()), repair_mojibake(row["Speaker"].strip()) or None)
            parsed.append((dia, utt, row, turn))

        dialogues: dict[int, list[tuple[int, Turn]]] = defaultdict(list)
        for dia, utt, _, turn in parsed:
            dialogues[dia].append((utt, turn))
        for turns in dialogues.values():
            turns.sort(key=lambda t: t[0])

        samples = []
        for dia, utt, row, turn in parsed:
            name = f"dia{dia}_utt{utt}"
            meta: dict[str, Any] = {
                "dialogue_id": dia,
                "utterance_id": utt,
                "emotion": row["Emotion"].strip().lower(),
                "sentiment": row["Sentiment"].strip().lower(),
            }
            for col, key in OPTIONAL_META:
                if row.get(col, "").strip():
                    meta[key] = row[col].strip()
            samples.append(
                Sample(
                    id=f"{split}_{name}",
                    transcript=turn.text,
                    target=row[self.label_column].strip().lower(),
                    media={"video": str(clips / f"{name}.mp4")},
                    group=f"{split}_dia{dia}",
                    context=[turn for u, turn in dialogues[dia] if u < utt],
                    speaker=turn.speaker,
                    meta=meta,
                )
            )
        return samples


class MELDEmotion(MELD):
    label_column = "Emotion"
    info = DatasetInfo(
        corpus="meld",
        task=TaskType.CLASSIFICATION,
        labels=("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
        language="en",
        metric_suite="classification",
        task_name="emotion",
        description="MELD: utterances from Friends dialogues, 7-way emotion",
    )


class MELDSentiment(MELD):
    label_column = "Sentiment"
    info = DatasetInfo(
        corpus="meld-sentiment",
        task=TaskType.CLASSIFICATION,
        labels=("negative", "neutral", "positive"),
        language="en",
        metric_suite="classification",
        task_name="sentiment",
        description="MELD: utterances from Friends dialogues, 3-way sentiment",
    )
