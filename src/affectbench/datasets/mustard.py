"""MUStARD: sarcasm in TV-show utterances, with the dialogue turns that led to them.

`<root>/sarcasm_data.json` maps id -> {utterance, speaker, context[], context_speakers[], sarcasm,
show}; clips `utterances_final/<id>.mp4` (context clips `context_final/<id>_c.mp4`, in meta).

Splits (train/valid/test), option `split_mode`:
- "auto" (default): "published" when the copy holds the published `split_indices.p` (in the root
  or `data/`) and `trust_pickles: true` is set, else "folds".
- "published", option `fold` 1..5: the MUStARD authors' 5-fold split, `split_indices.p`, a Python-2
  pickle of 5 (train indices, test indices) pairs indexing `sarcasm_data.json` in file order (as
  their data_loader.py reads it). A pickle can run code, so it needs `trust_pickles: true`, as
  UR-FUNNY does. Valid is carved out of train as below.
- "folds", option `fold` 1..5 (default 1): affectbench's own deterministic stratified 5-fold split.
  Within each class, ids are ordered by SHA-1 of the id and dealt round-robin into folds
  0..4; test = fold `fold`-1. The other four folds are the paper's training set; of them,
  every 10th sample per class (in that same order) is held out as valid, the rest is train.
- "speaker_independent": as in the MUStARD paper's speaker-independent setup, test = every
  utterance of the show FRIENDS, and train/valid = the other shows, valid carved out as above.

Groups (for the grouped bootstrap): show + scene, where a scene joins utterances that quote each
other's lines in their context (`shared_text_groups`); MUStARD names no scene, and utterances cut
from one scene share context turns, so they are not independent.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from pathlib import Path
from typing import Any

from ..core.errors import DatasetError
from ..core.types import DatasetInfo, Sample, TaskType, Turn
from ._common import fold_option, shared_text_groups, truthy
from .base import Dataset

LABEL_FILE = "sarcasm_data.json"
REQUIRED = ("utterance", "speaker", "sarcasm")
SPLIT_MODES = ("auto", "published", "folds", "speaker_independent")
INDICES_FILES = ("split_indices.p", "data/split_indices.p")
TEST_SHOW = "FRIENDS"


def _order(key: str) -> str:
    return hashlib.sha1(key.encode()).hexdigest()


class MUStARD(Dataset):
    info = DatasetInfo(
        corpus="mustard",
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
        self.split_mode = str(options.get("split_mode", "auto"))
        if self.split_mode not in SPLIT_MODES:
            raise DatasetError(
                f"dataset 'mustard': option split_mode must be one of {', '.join(SPLIT_MODES)}, got {self.split_mode!r}"
            )
        self.fold = fold_option(options, 1, self.info.corpus)
        self.trust_pickles = truthy(options.get("trust_pickles", False))
        self.indices_file = next((self.root / f for f in INDICES_FILES if (self.root / f).is_file()), None)
        if self.split_mode == "auto":
            self.split_mode = "published" if self.indices_file is not None and self.trust_pickles else "folds"
            if self.indices_file is not None and not self.trust_pickles:
                self.warnings.append(
                    f"{self.indices_file}: the published split is a pickle; using affectbench's own folds. "
                    "Set trust_pickles: true to use the published split"
                )
        if self.split_mode == "published":
            if self.indices_file is None:
                raise DatasetError(
                    f"dataset 'mustard': split_mode published needs split_indices.p in {self.root} or its data/ "
                    "folder (from the MUStARD repository)"
                )
            if not self.trust_pickles:
                raise DatasetError(
                    f"dataset 'mustard': the published split {self.indices_file} is a Python pickle, and loading "
                    "a pickle can execute arbitrary code; if you trust your copy, set the dataset option "
                    "`trust_pickles: true` (`--set dataset.options.trust_pickles=true`)"
                )

    def split_scheme(self) -> str:
        """The resolved split mode (option `auto` resolves per copy), for the corpus identity."""
        return {
            "published": "published 5-fold split (split_indices.p)",
            "folds": "affectbench stratified 5-fold split",
        }.get(self.split_mode, f"speaker-independent split (test = {TEST_SHOW})")

    def describe_split(self, split: str) -> str:
        """Which split a number used, in words (recorded with each run and shown in the report)."""
        if self.split_mode == "published":
            return f"{split} of published fold {self.fold}/5 (split_indices.p)"
        if self.split_mode == "folds":
            return f"{split} of affectbench stratified fold {self.fold}/5 (not the published split)"
        return f"{split} of the speaker-independent split (test = {TEST_SHOW})"

    def _published_test_ids(self) -> set[str]:
        import pickle

        assert self.indices_file is not None
        try:
            with self.indices_file.open("rb") as f:
                folds = pickle.load(f, encoding="latin1")  # noqa: S301 - explicit trust_pickles opt-in
            _, test = folds[self.fold - 1]
            ids = [s.id for s in self._all]
            return {ids[int(i)] for i in test}
        except Exception as e:  # a broken pickle can raise almost anything
            raise DatasetError(
                f"dataset 'mustard': cannot read fold {self.fold} from {self.indices_file} ({type(e).__name__}: {e}); "
                "expected a pickled list of 5 (train indices, test indices) pairs"
            ) from e

    def label_files(self, split: str) -> list[Path]:
        used = [self.indices_file] if self.split_mode == "published" and self.indices_file else []
        return [self.root / LABEL_FILE, *used]

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
        scenes = shared_text_groups({s.id: [s.transcript, *(t.text for t in s.context)] for s in samples})
        for s in samples:
            s.group = f"{s.meta.get('show') or ''}/{scenes[s.id]}"
        return samples

    def split_of(self) -> dict[str, str]:
        """Sample id -> split under the configured split_mode and fold."""
        by_class: dict[str, list[Sample]] = {}
        for s in self._all:
            by_class.setdefault(str(s.target), []).append(s)
        out: dict[str, str] = {}
        published = self._published_test_ids() if self.split_mode == "published" else None
        for members in by_class.values():
            members = sorted(members, key=lambda s: _order(s.id))
            if published is not None:
                for s in members:
                    out[s.id] = "test" if s.id in published else "train"
            elif self.split_mode == "folds":
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
