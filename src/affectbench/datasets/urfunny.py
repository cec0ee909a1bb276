"""UR-FUNNY v2: is a TED-talk punchline humorous, given the sentences before it?

`<root>/data_folds.pkl` ({train, dev, test} -> ids), `language_sdk.pkl` (id ->
{punchline_sentence, context_sentences, ...}), `humor_label_sdk.pkl` (id -> 0/1), raw videos
`<id>.mp4` in `urfunny2_videos/` (or `videos/`, or the root when it holds mp4s; option `video_dir` overrides).

These are Python pickles, and unpickling runs whatever code the file names, so they are read
only with the explicit option `trust_pickles: true`.

Groups (for the grouped bootstrap): the TED talk a punchline comes from. The SDK names no talk, so
punchlines whose sentences overlap (one's punchline or context quoted in another's context) are
joined into one group (`shared_text_groups`); each group is at most one talk.
"""

from __future__ import annotations

import pickle
from functools import cached_property
from pathlib import Path
from typing import Any

from ..core.errors import DatasetError
from ..core.types import DatasetInfo, Sample, TaskType, Turn
from ._common import find_dir, shared_text_groups, truthy
from .base import Dataset

FILES = ("data_folds.pkl", "language_sdk.pkl", "humor_label_sdk.pkl")
SPLIT_NAMES = {"train": "train", "dev": "valid", "valid": "valid", "test": "test"}
VIDEO_DIRS = ("urfunny2_videos", "videos", "raw_videos", "Raw")


class URFunny(Dataset):
    info = DatasetInfo(
        corpus="urfunny",
        task=TaskType.CLASSIFICATION,
        labels=("not humorous", "humorous"),
        language="en",
        metric_suite="classification",
        task_name="humour",
        description="UR-FUNNY v2: TED-talk punchlines with their preceding sentences, humorous or not",
    )

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.warnings: list[str] = []
        if not truthy(options.get("trust_pickles", False)):
            raise DatasetError(
                f"dataset 'urfunny' is stored as Python pickles ({', '.join(FILES)} under {self.root}), and "
                "loading a pickle can execute arbitrary code; if you trust your copy, opt in with "
                "`--set dataset.options.trust_pickles=true` on the command line or `trust_pickles: true` "
                "under the dataset's options in the experiment file (`--option trust_pickles=true` for `data check`)"
            )

    def label_files(self, split: str) -> list[Path]:
        return [self.root / name for name in FILES]

    def _pickle(self, name: str) -> Any:
        path = self.root / name
        if not path.is_file():
            raise DatasetError(
                f"dataset 'urfunny': {path} not found; expected the UR-FUNNY v2 pickles {', '.join(FILES)} in the root"
            )
        try:
            with path.open("rb") as f:
                return pickle.load(f, encoding="latin1")  # noqa: S301 - explicit trust_pickles opt-in
        except Exception as e:  # a broken pickle can raise almost anything
            raise DatasetError(f"dataset 'urfunny': cannot unpickle {path} ({type(e).__name__}: {e})") from e

    @cached_property
    def _data(self) -> tuple[dict[str, list[str]], dict[str, Any], dict[str, Any]]:
        folds, language, labels = (self._pickle(n) for n in FILES)
        for name, obj in zip(FILES, (folds, language, labels), strict=True):
            if not isinstance(obj, dict):
                raise DatasetError(
                    f"dataset 'urfunny': {self.root / name} holds a {type(obj).__name__}; expected a dict"
                )
        splits: dict[str, list[str]] = {}
        for key, ids in folds.items():
            split = SPLIT_NAMES.get(str(key).lower())
            if split is None:
                self.warnings.append(f"{self.root / FILES[0]}: unknown fold {key!r} ignored (expected train/dev/test)")
                continue
            splits.setdefault(split, []).extend(str(i) for i in ids)
        missing = [s for s in ("train", "dev", "test") if SPLIT_NAMES[s] not in splits]
        if missing:
            raise DatasetError(
                f"dataset 'urfunny': {self.root / FILES[0]} lacks fold(s) {', '.join(missing)}; "
                "expected a dict with keys train, dev, test"
            )
        return splits, {str(k): v for k, v in language.items()}, {str(k): v for k, v in labels.items()}

    def video_dir(self) -> Path:
        custom = self.options.get("video_dir")
        if custom:
            return self.root / custom
        found = find_dir(self.root, VIDEO_DIRS)
        if found is not None:
            return found
        return self.root if next(self.root.glob("*.mp4"), None) is not None else self.root / VIDEO_DIRS[0]

    def load(self, split: str) -> list[Sample]:
        self._check_split(split)
        splits, language, labels = self._data
        videos = self.video_dir()
        samples = []
        for sid in splits[split]:
            entry = language.get(sid)
            if not isinstance(entry, dict) or "punchline_sentence" not in entry:
                raise DatasetError(
                    f"dataset 'urfunny': {self.root / FILES[1]} has no entry with punchline_sentence for id {sid}; "
                    "expected id -> {punchline_sentence, context_sentences, ...}"
                )
            raw = labels.get(sid)
            if raw is None:
                target: str | None = None
            else:
                try:
                    target = self.info.labels[int(raw)] if int(raw) in (0, 1) and int(raw) == raw else str(raw)
                except (TypeError, ValueError):
                    target = str(raw)
            samples.append(
                Sample(
                    id=sid,
                    transcript=str(entry["punchline_sentence"]).strip(),
                    target=target,
                    media={"video": str(videos / f"{sid}.mp4")},
                    group=sid,
                    context=[Turn(str(t).strip()) for t in entry.get("context_sentences") or []],
                    meta={"fold": split},
                )
            )
        talks = shared_text_groups({s.id: [s.transcript, *(t.text for t in s.context)] for s in samples})
        for s in samples:
            s.group = str(talks[s.id])
        return samples
