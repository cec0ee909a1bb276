"""Dataset properties computed from the data itself, to relate them to performance.

Callers load the Samples (this module never imports datasets or media): clip durations come
from a `duration` probe passed in, else from `meta["duration"]`, else from `span`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..core.types import DatasetInfo, Sample, TaskType

DurationProbe = Callable[[Sample], "float | None"]
UNIMODAL_KEYS = {"T": "label_T", "A": "label_A", "V": "label_V"}


@dataclass
class Distribution:
    """Summary of a numeric distribution (None fields when there are no values)."""

    n: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    p10: float | None = None
    median: float | None = None
    p90: float | None = None
    max: float | None = None

    @classmethod
    def of(cls, values: Iterable[float]) -> Distribution:
        v = np.asarray([float(x) for x in values if x is not None and math.isfinite(float(x))], dtype=float)
        if v.size == 0:
            return cls(n=0)
        q = np.quantile(v, [0.1, 0.5, 0.9])
        return cls(
            n=int(v.size),
            mean=float(v.mean()),
            std=float(v.std()),
            min=float(v.min()),
            p10=float(q[0]),
            median=float(q[1]),
            p90=float(q[2]),
            max=float(v.max()),
        )


@dataclass
class DatasetProperties:
    """What a dataset is like. For regression datasets the classes are the label polarities."""

    name: str
    language: str
    task: str
    n_samples: int
    n_classes: int
    class_counts: dict[str, int]
    label_entropy: float  # bits
    label_entropy_norm: float  # entropy / log2(n_classes), 1.0 = perfectly balanced
    imbalance_ratio: float  # largest class count / smallest non-empty class count
    duration: Distribution
    transcript_length: Distribution  # words; characters for Chinese/Japanese
    n_speakers: int | None
    n_groups: int
    score: Distribution | None = None  # regression targets
    unimodal_agreement: dict[str, float] | None = None  # SIMS: sign agreement with the multimodal label
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def numeric(self) -> dict[str, float | None]:
        """Flat numeric properties for correlation with performance."""
        out: dict[str, float | None] = {
            "n_classes": float(self.n_classes),
            "label_entropy_norm": self.label_entropy_norm,
            "imbalance_ratio": self.imbalance_ratio,
            "duration_mean": self.duration.mean,
            "transcript_length_mean": self.transcript_length.mean,
            "is_english": float(self.language.lower().startswith("en")),
        }
        if self.unimodal_agreement:
            out["unimodal_all_agree"] = self.unimodal_agreement.get("all")
        return out


def sign_class(x: float, eps: float = 0.0) -> int:
    """-1, 0 or 1: the sign of a sentiment score (|x| <= eps counts as neutral)."""
    return 0 if abs(x) <= eps else (1 if x > 0 else -1)


_POLARITY_NAMES = {-1: "negative", 0: "neutral", 1: "positive"}


def _class_of(info: DatasetInfo, target: Any) -> str | None:
    if target is None:
        return None
    if info.task is TaskType.REGRESSION:
        try:
            return _POLARITY_NAMES[sign_class(float(target))]
        except (TypeError, ValueError):
            return None
    return str(target)


def label_entropy(counts: Mapping[str, int]) -> float:
    """Shannon entropy in bits of a class distribution."""
    total = sum(counts.values())
    if total == 0:
        return 0.0
    p = np.asarray([c / total for c in counts.values() if c > 0])
    return float(-(p * np.log2(p)).sum())


def imbalance_ratio(counts: Mapping[str, int]) -> float:
    """Largest over smallest non-empty class count (1.0 = balanced)."""
    nz = [c for c in counts.values() if c > 0]
    return float(max(nz) / min(nz)) if nz else float("nan")


def transcript_length(text: str, language: str) -> int:
    """Words, or characters (without spaces) for languages written without spaces."""
    if language.lower()[:2] in ("zh", "ja"):
        return len("".join(text.split()))
    return len(text.split())


def clip_duration(sample: Sample, probe: DurationProbe | None = None) -> float | None:
    """A clip's length in seconds: the probe's answer, else meta['duration'], else the span."""
    if probe is not None:
        d = probe(sample)
        if d is not None:
            return float(d)
    d = sample.meta.get("duration") if sample.meta else None
    if d is not None:
        return float(d)
    if sample.span is not None:
        return float(sample.span[1] - sample.span[0])
    return None


def _unimodal(sample: Sample, modality: str) -> float | None:
    v = (sample.meta or {}).get(UNIMODAL_KEYS[modality])
    if v is None or v == "":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def unimodal_agreement(samples: Sequence[Sample]) -> dict[str, float] | None:
    """Sign agreement of each unimodal label (label_T/A/V in meta) with the multimodal label.

    Returns rates for "T", "A", "V", "all" (all three agree with the multimodal label) and
    "unimodal_consensus" (T, A and V agree with each other), plus "n"; None without such labels.
    """
    rows = []
    for s in samples:
        if s.target is None:
            continue
        uni = {m: _unimodal(s, m) for m in UNIMODAL_KEYS}
        if any(v is None for v in uni.values()):
            continue
        rows.append((sign_class(float(s.target)), {m: sign_class(v) for m, v in uni.items()}))
    if not rows:
        return None
    n = len(rows)
    out = {m: sum(u[m] == t for t, u in rows) / n for m in UNIMODAL_KEYS}
    out["all"] = sum(all(u[m] == t for m in UNIMODAL_KEYS) for t, u in rows) / n
    out["unimodal_consensus"] = sum(len(set(u.values())) == 1 for _, u in rows) / n
    out["n"] = float(n)
    return out


def agreement_strata(samples: Sequence[Sample]) -> dict[str, str]:
    """sample id -> "agree" (T, A, V and multimodal signs all equal) or "disagree"; samples without labels left out."""
    out = {}
    for s in samples:
        uni = [_unimodal(s, m) for m in UNIMODAL_KEYS]
        if s.target is None or any(v is None for v in uni):
            continue
        t = sign_class(float(s.target))
        out[s.id] = "agree" if all(sign_class(v) == t for v in uni) else "disagree"
    return out


def duration_strata(
    samples: Sequence[Sample], edges: Sequence[float] = (0, 3, 6, 10), probe: DurationProbe | None = None
) -> dict[str, str]:
    """sample id -> duration bucket label like "3-6s" (the last bucket is open: ">=10s")."""
    out = {}
    for s in samples:
        d = clip_duration(s, probe)
        if d is None:
            continue
        label = f">={edges[-1]:g}s"
        for lo, hi in zip(edges[:-1], edges[1:], strict=False):
            if lo <= d < hi:
                label = f"{lo:g}-{hi:g}s"
                break
        if d < edges[0]:
            label = f"<{edges[0]:g}s"
        out[s.id] = label
    return out


def dataset_properties(
    info: DatasetInfo, samples: Sequence[Sample], duration: DurationProbe | None = None
) -> DatasetProperties:
    """Compute a dataset's properties from its samples (one split, or several concatenated)."""
    classes = [c for c in (_class_of(info, s.target) for s in samples) if c is not None]
    if info.task is TaskType.CLASSIFICATION:
        counts = {lab: 0 for lab in info.labels}
        for c in classes:
            counts[c] = counts.get(c, 0) + 1
    else:
        counts = {name: 0 for name in _POLARITY_NAMES.values()}
        counts.update(Counter(classes))
    n_classes = len(counts)
    ent = label_entropy(counts)
    speakers = {s.speaker for s in samples if s.speaker}
    score = None
    if info.task is TaskType.REGRESSION:
        score = Distribution.of(float(s.target) for s in samples if isinstance(s.target, int | float))
    return DatasetProperties(
        name=info.corpus,
        language=info.language,
        task=info.task_name or info.task.value,
        n_samples=len(samples),
        n_classes=n_classes,
        class_counts=dict(counts),
        label_entropy=ent,
        label_entropy_norm=ent / math.log2(n_classes) if n_classes > 1 else 0.0,
        imbalance_ratio=imbalance_ratio(counts),
        duration=Distribution.of(d for d in (clip_duration(s, duration) for s in samples) if d is not None),
        transcript_length=Distribution.of(transcript_length(s.transcript or "", info.language) for s in samples),
        n_speakers=len(speakers) if speakers else None,
        n_groups=len({s.group for s in samples if s.group}),
        score=score,
        unimodal_agreement=unimodal_agreement(samples),
    )
