"""IEMOCAP (IEMOCAP_full_release layout): 6-way and 4-way emotion, leave-one-session-out folds.

Reads `Session{1..5}/dialog/EmoEvaluation/<dialog>.txt` (labels, spans, V/A/D),
`dialog/transcriptions/<dialog>.txt` (text), and points at `sentences/wav/<dialog>/<utt>.wav`
(audio) and `dialog/avi/DivX/<dialog>.avi` (video, cut by `span`; the span applies to the
video only, the wav already is the sentence).

Splits, option `fold` in 1..5 (default 5): test = Session{fold}; the other four sessions are
split by dialogue into valid (every dialogue whose CRC32 of its name is 0 mod 10, about 10%,
stable whatever subset of the corpus is present; no dialogue straddles train and valid) and
train (the rest). So test speakers are never seen in train or valid.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path
from typing import Any, ClassVar

from ..core.errors import DatasetError
from ..core.types import DatasetInfo, Sample, TaskType
from ._common import fold_option
from .base import Dataset

SESSIONS = (1, 2, 3, 4, 5)
_EVAL_LINE = re.compile(r"^\[\s*([\d.]+)\s*-\s*([\d.]+)\s*\]\s+(\S+)\s+(\S+)\s+\[([^\]]*)\]")
_TRANS_LINE = re.compile(r"^(\S+)\s+\[[^\]]*\]:\s?(.*)$")
LABELS6 = {"hap": "happy", "sad": "sad", "neu": "neutral", "ang": "angry", "exc": "excited", "fru": "frustrated"}
LABELS4 = {"hap": "happy", "exc": "happy", "sad": "sad", "neu": "neutral", "ang": "angry"}


class IEMOCAP(Dataset):
    """Shared reader; subclasses set `info` and `label_map` (raw code -> label; others are dropped)."""

    label_map: ClassVar[dict[str, str]]

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.warnings: list[str] = []
        self.fold = fold_option(options, 5, self.info.corpus, " (the test session)")
        # Accept the folder above IEMOCAP_full_release as root too.
        present = self._sessions_present()
        if not present and (self.root / "IEMOCAP_full_release").is_dir():
            self.root = self.root / "IEMOCAP_full_release"
            present = self._sessions_present()
        if not present:
            raise DatasetError(
                f"dataset {self.info.corpus!r}: no Session1..Session5 folders under {self.root}; expected the "
                f"IEMOCAP_full_release layout Session{{1..5}}/dialog/EmoEvaluation/<dialog>.txt"
            )
        missing = [s for s in SESSIONS if s not in present]
        if missing:
            self.warnings.append(f"{self.root}: Session folder(s) {', '.join(map(str, missing))} missing")

    def describe_split(self, split: str) -> str:
        if split == "test":
            return f"test = Session{self.fold} (LOSO fold {self.fold}/5)"
        return f"{split} of Sessions {', '.join(str(s) for s in SESSIONS if s != self.fold)} (LOSO fold {self.fold}/5)"

    def _sessions_present(self) -> list[int]:
        return [s for s in SESSIONS if (self.root / f"Session{s}").is_dir()]

    def load(self, split: str) -> list[Sample]:
        self._check_split(split)
        if split == "test":
            if not (self.root / f"Session{self.fold}").is_dir():
                raise DatasetError(
                    f"dataset {self.info.corpus!r}: fold {self.fold} tests on Session{self.fold}, "
                    f"but {self.root / f'Session{self.fold}'} does not exist"
                )
            return self._session(self.fold)
        out = []
        for s in self._sessions_present():
            if s != self.fold:
                out.extend(x for x in self._session(s) if self.is_valid_dialog(x.group) == (split == "valid"))
        return out

    @staticmethod
    def is_valid_dialog(dialog: str) -> bool:
        """Whether a training-session dialogue is held out as validation (stable, ~10%)."""
        return zlib.crc32(dialog.encode()) % 10 == 0

    def label_files(self, split: str) -> list[Path]:
        """Every session's EmoEvaluation and transcription files (a LOSO split reads all sessions)."""
        return sorted(
            p
            for s in SESSIONS
            for sub in ("EmoEvaluation", "transcriptions")
            for p in (self.root / f"Session{s}" / "dialog" / sub).glob("*.txt")
            if not p.name.startswith(".")
        )

    def _session(self, session: int) -> list[Sample]:
        base = self.root / f"Session{session}"
        eval_dir = base / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            raise DatasetError(
                f"dataset {self.info.corpus!r}: {eval_dir} not found; expected label files "
                f"Session{session}/dialog/EmoEvaluation/<dialog>.txt with lines like "
                f"'[6.2901 - 8.2357]\\tSes01F_impro01_F000\\tneu\\t[2.5, 2.5, 2.5]'"
            )
        files = sorted(p for p in eval_dir.glob("*.txt") if not p.name.startswith("."))
        if not files:
            self.warnings.append(f"{eval_dir}: no <dialog>.txt label files")
        samples = []
        for path in files:
            dialog = path.stem
            texts = self._transcripts(base / "dialog" / "transcriptions" / f"{dialog}.txt")
            for start, end, utt, code, vad in self._evaluations(path):
                label = self.label_map.get(code)
                if label is None:
                    continue
                if utt not in texts:
                    self.warnings.append(f"{path}: {utt} has no transcript line in dialog/transcriptions/{dialog}.txt")
                gender = utt.rsplit("_", 1)[-1][:1]
                samples.append(
                    Sample(
                        id=utt,
                        transcript=texts.get(utt, ""),
                        target=label,
                        media={
                            "audio": str(base / "sentences" / "wav" / dialog / f"{utt}.wav"),
                            "video": str(base / "dialog" / "avi" / "DivX" / f"{dialog}.avi"),
                        },
                        group=dialog,
                        speaker=f"Ses{session:02d}_{gender}",
                        span=(start, end),
                        meta={
                            "session": session,
                            "dialog": dialog,
                            "raw_label": code,
                            "method": "improvised" if "_impro" in dialog else "scripted",
                            "valence": vad[0],
                            "arousal": vad[1],
                            "dominance": vad[2],
                            "span_applies_to": "video",
                        },
                    )
                )
        return samples

    def _evaluations(self, path: Path) -> list[tuple[float, float, str, str, tuple[float | None, ...]]]:
        out = []
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as e:
            raise DatasetError(f"dataset {self.info.corpus!r}: cannot read label file {path} ({e})") from e
        for line in lines:
            m = _EVAL_LINE.match(line.strip())
            if not m:
                continue
            vad: list[float | None] = []
            for v in m.group(5).split(",")[:3]:
                try:
                    vad.append(float(v))
                except ValueError:
                    vad.append(None)
            vad += [None] * (3 - len(vad))
            out.append((float(m.group(1)), float(m.group(2)), m.group(3), m.group(4).lower(), tuple(vad)))
        return out

    def _transcripts(self, path: Path) -> dict[str, str]:
        if not path.is_file():
            self.warnings.append(f"{path}: transcription file missing; transcripts left empty")
            return {}
        texts = {}
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _TRANS_LINE.match(line.strip())
            if m:
                texts[m.group(1)] = m.group(2).strip()
        return texts


class IEMOCAP6(IEMOCAP):
    label_map = LABELS6
    info = DatasetInfo(
        corpus="iemocap",
        task=TaskType.CLASSIFICATION,
        labels=("happy", "sad", "neutral", "angry", "excited", "frustrated"),
        language="en",
        metric_suite="classification",
        task_name="emotion",
        description="IEMOCAP 6-way emotion (hap, sad, neu, ang, exc, fru); leave-one-session-out via option fold",
    )


class IEMOCAP4(IEMOCAP):
    label_map = LABELS4
    info = DatasetInfo(
        corpus="iemocap4",
        task=TaskType.CLASSIFICATION,
        labels=("happy", "sad", "neutral", "angry"),
        language="en",
        metric_suite="classification",
        task_name="emotion",
        description="IEMOCAP 4-way emotion (excited merged into happy); leave-one-session-out via option fold",
    )
