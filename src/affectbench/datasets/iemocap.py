"""IEMOCAP (IEMOCAP_full_release layout): 6-way and 4-way emotion, leave-one-session-out folds.

Reads `Session{1..5}/dialog/EmoEvaluation/<dialog>.txt` (labels, spans, V/A/D),
`dialog/transcriptions/<dialog>.txt` (text), and points at `sentences/wav/<dialog>/<utt>.wav`
(audio) and `dialog/avi/DivX/<dialog>.avi` (video, cut by `span`; the span applies to the
video only, the wav already is the sentence).

Protocols, option `protocol` (named, because each drops other utterances and papers mix them up;
Antoniou et al. 2023, "Designing and evaluating speech emotion recognition systems: a reality check
case study with IEMOCAP", ICASSP, survey the variants): `6way` (hap, sad, neu, ang, exc, fru; the
`iemocap` default), `4way` (excited merged into happy; the `iemocap4` default), `4way-happy` (happy
without excited: exc dropped), `4way-excited` (excited only: hap dropped, exc its own class), and the
per-emotion binary views `binary-happy|sad|angry|neutral` over the 4way utterances (the emotion vs
"other", as reported per emotion by Zadeh et al. 2018, Graph-MFN, and Tsai et al. 2019, MulT). Every
utterance whose code a protocol does not map (xxx, oth, sur, fea, dis, ...) is dropped and counted
(`protocol(split)`), so `data check` and each run record say how many of each code were dropped.

Splits, option `fold` in 1..5 (default 5): test = Session{fold}; the other four sessions are
split by dialogue into valid (every dialogue whose CRC32 of its name is 0 mod 10, about 10%,
stable whatever subset of the corpus is present; no dialogue straddles train and valid) and
train (the rest). So test speakers are never seen in train or valid.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import replace
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
_BINARY = ("happy", "sad", "angry", "neutral")
OTHER = "other"

# protocol -> (raw code -> label, labels in canonical order, what it is)
PROTOCOLS: dict[str, tuple[dict[str, str], tuple[str, ...], str]] = {
    "6way": (LABELS6, ("happy", "sad", "neutral", "angry", "excited", "frustrated"), "6-way emotion"),
    "4way": (LABELS4, ("happy", "sad", "neutral", "angry"), "4-way emotion, excited merged into happy"),
    "4way-happy": (
        {k: v for k, v in LABELS4.items() if k != "exc"},
        ("happy", "sad", "neutral", "angry"),
        "4-way emotion, happy without excited (exc dropped)",
    ),
    "4way-excited": (
        {"exc": "excited", "sad": "sad", "neu": "neutral", "ang": "angry"},
        ("excited", "sad", "neutral", "angry"),
        "4-way emotion, excited only (hap dropped)",
    ),
    **{
        f"binary-{e}": (
            {k: (e if v == e else OTHER) for k, v in LABELS4.items()},
            (e, OTHER),
            f"binary {e} vs other over the 4-way utterances",
        )
        for e in _BINARY
    },
}


class IEMOCAP(Dataset):
    """Shared reader; subclasses set `info` and `label_map` (raw code -> label; others are dropped)."""

    label_map: ClassVar[dict[str, str]]

    default_protocol: ClassVar[str]

    def __init__(self, root: str | Path | None = None, **options: Any) -> None:
        super().__init__(root, **options)
        self.warnings: list[str] = []
        self.protocol_name = str(options.get("protocol", self.default_protocol))
        if self.protocol_name not in PROTOCOLS:
            raise DatasetError(
                f"dataset {self.info.corpus!r}: unknown protocol {self.protocol_name!r}; "
                f"use one of {', '.join(PROTOCOLS)}"
            )
        if self.protocol_name != self.default_protocol:
            self.label_map, labels, what = PROTOCOLS[self.protocol_name]  # type: ignore[misc]
            corpus = f"iemocap-{self.protocol_name}"
            self.info = replace(self.info, corpus=corpus, labels=labels, description=f"IEMOCAP {what}")  # type: ignore[misc]
        self._dropped: dict[str, Counter[str]] = {}  # dialog -> raw code -> utterances dropped
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

    def protocol(self, split: str) -> dict[str, Any]:
        """{"name": the protocol, "dropped": {raw code: utterances of `split` it dropped}} (after `load`)."""
        dropped: Counter[str] = Counter()
        for dialog, counts in self._dropped.items():
            session = int(dialog[3:5]) if dialog[3:5].isdigit() else None
            if split == "test":
                ours = session == self.fold
            else:
                ours = session != self.fold and self.is_valid_dialog(dialog) == (split == "valid")
            if ours:
                dropped.update(counts)
        return {"name": self.protocol_name, "dropped": dict(sorted(dropped.items()))}

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
            dropped = self._dropped[dialog] = Counter()
            for start, end, utt, code, vad in self._evaluations(path):
                label = self.label_map.get(code)
                if label is None:
                    dropped[code] += 1
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
    default_protocol = "6way"
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
    default_protocol = "4way"
    info = DatasetInfo(
        corpus="iemocap4",
        task=TaskType.CLASSIFICATION,
        labels=("happy", "sad", "neutral", "angry"),
        language="en",
        metric_suite="classification",
        task_name="emotion",
        description="IEMOCAP 4-way emotion (excited merged into happy); leave-one-session-out via option fold",
    )
