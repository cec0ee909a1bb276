"""MUStARD: sarcasm in TV-show utterances, with the dialogue turns that led to them.

`<root>/sarcasm_data.json` maps id -> {utterance, speaker, context[], context_speakers[], sarcasm,
show}; clips `utterances_final/<id>.mp4` (context clips `context_final/<id>_c.mp4`, in meta).

Splits (train/valid/test), option `split_mode`:
- "folds" (default), option `fold` 1..5 (default 1): a deterministic stratified 5-fold split.
  Within each class, ids are ordered by SHA-1 of the id and dealt round-robin into folds
  0..4; test = fold `fold`-1. The other four folds are the paper's training set; of them,
  every 10th sample per class (in that same order) is held out as valid, the rest is train.
- "speaker_independent": as in the MUStARD paper's speaker-independent setup, test = every
  utterance of the show FRIENDS, and train/valid = the other shows, valid carved out as above.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..types import DatasetInfo, Sample, TaskType, Turn
from ._common import fold_option
from .base import Dataset

LABEL_FILE = "sarcasm_data.json"
REQUIRED = ("utterance", "speaker", "sarcasm")
SPLIT_MODES = ("folds", "speaker_independent")
TEST_SHOW = "FRIENDS"


def _order(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


class MUStARD(Dataset):
    info = DatasetInfo(
        name="mustard",
        task=TaskType.CLASSIFICATION,
        labels=("sincere", "sarcastic"),
        language="en",
        metric_suite="classification",
        task_name="sarcasm",
        description="MUStARD: sarcasm in TV-show utterances with dialogue context; 5-fold or speaker-independent",
    )

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.warnings: list[str] = []
        self.split_mode = str(options.get("split_mode", "folds"))
        if self.split_mode not in SPLIT_MODES:
            raise DatasetError(
                f"dataset 'mustard': option split_mode must be one of {', '.join(SPLIT_MODES)}, got {self.split_mode!r}"
            )
        self.fold = fold_option(options, 1, self.info.name)

    def label_files(self, split: str) -> list[Path]:
        return [self.root / LABEL_FILE]

    @cached_property
    def _all(self) -> list[Sample]:
        path = self.root / LABEL_FILE
        expected = "a JSON object id -> {utterance, speaker, context, context_speakers, sarcasm, show}"
        if not path.is_file():
            raise DatasetError(f"dataset 'mustard': label file {path} not found; expected {expected}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            raise DatasetError(f"dataset 'mustard': {path} is not valid JSON ({e}); expected {expected}") from e
        if not isinstance(data, dict):
            raise DatasetError(f"dataset 'mustard': {path} holds a {type(data).__name__}; expected {expected}")
        samples = []
        for key, item in data.items():
            missing = [k for k in REQUIRED if not isinstance(item, dict) or k not in item]
            if missing:
                raise DatasetError(
                    f"dataset 'mustard': {path} entry {key!r} lacks key(s) {', '.join(missing)}; expected {expected}"
                )
            context = [str(t) for t in item.get("context") or []]
            speakers = list(item.get("context_speakers") or [])
            if len(speakers) != len(context):
                self.warnings.append(
                    f"{path} entry {key!r}: {len(context)} context utterances but {len(speakers)} context_speakers"
                )
            sarcasm = item["sarcasm"]
            target = {True: "sarcastic", False: "sincere"}.get(sarcasm) if isinstance(sarcasm, bool) else str(sarcasm)
            sid = str(key)
            samples.append(
                Sample(
                    id=sid,
                    transcript=str(item["utterance"]).strip(),
                    target=target,
                    media={"video": str(self.root / "utterances_final" / f"{sid}.mp4")},
                    group=sid,
                    context=[
                        Turn(text, str(speakers[i]) if i < len(speakers) else None) for i, text in enumerate(context)
                    ],
                    speaker=str(item["speaker"]) or None,
                    meta={
                        "show": item.get("show"),
                        "context_video": str(self.root / "context_final" / f"{sid}_c.mp4"),
                    },
                )
            )
        return samples

    def split_of(self) -> dict[str, str]:
        """Sample id -> split under the configured split_mode and fold."""
        by_class: dict[str, list[Sample]] = {}
        for s in self._all:
            by_class.setdefault(str(s.target), []).append(s)
        out: dict[str, str] = {}
        for members in by_class.values():
            members = sorted(members, key=lambda s: _order(s.id))
            if self.split_mode == "folds":
                for rank, s in enumerate(members):
                    out[s.id] = "test" if rank % 5 == self.fold - 1 else "train"
            else:
                for s in members:
                    out[s.id] = "test" if str(s.meta.get("show") or "").upper() == TEST_SHOW else "train"
            training = [s for s in members if out[s.id] == "train"]
            for rank, s in enumerate(training):
                if rank % 10 == 0:
                    out[s.id] = "valid"
        return out

    def load(self, split: str) -> list[Sample]:
        self._check_split(split)
        splits = self.split_of()
        return [s for s in self._all if splits[s.id] == split]
