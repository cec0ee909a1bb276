"""The first stage of a run: which samples it reads, with what prompt, and the fingerprints of that data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.errors import DatasetError
from ..core.specs import RunSpec
from ..core.types import DatasetInfo, Sample
from ..datasets import Dataset, load_dataset, select_samples
from ..datasets.published import split_size_warnings
from ..prompts import load_prompt
from ..prompts.base import Prompt
from . import provenance
from .scoring import check_targets


@dataclass
class Selection:
    """What a run reads: the dataset, its info, the prompt, the selected samples (dataset order),
    the data record (`provenance.data_record` without the per-sample digests, plus the split in
    words) and the per-sample digests (id → 16 hex chars) that each prediction keeps in meta["data"]."""

    dataset: Dataset
    info: DatasetInfo
    prompt: Prompt
    samples: list[Sample]
    data: dict[str, Any]
    digests: dict[str, str]


def select(spec: RunSpec) -> Selection:
    """Load the run's dataset split and prompt and pick its samples (`spec.limit`, seeded).

    Eval runs have their targets checked here, before any run record or model exists
    (DatasetError naming the samples); DatasetError/AffectbenchError from the adapter propagate.
    """
    dataset = load_dataset(spec.dataset.name, spec.dataset.root, **spec.dataset.options)
    info = dataset.info
    prompt = load_prompt(spec.prompt, info, spec.prompt_language)
    split = unique_ids(dataset, spec.split, dataset.load(spec.split))
    samples = select_samples(split, spec.limit, spec.seed)
    if spec.kind == "eval":
        check_targets(((s.id, s.target) for s in samples), info)
    data = provenance.data_record(samples, dataset.label_files(spec.split), dataset.root)
    digests = data.pop("samples")
    data["split"] = dataset.describe_split(spec.split)  # which split/fold the number used, in words
    scheme = dataset.split_scheme()
    if scheme:
        data["scheme"] = scheme  # part of the run's corpus identity (analysis.corpus)
    data["protocol"] = protocol_record(dataset, spec.split, split)
    return Selection(dataset, info, prompt, samples, data, digests)


def unique_ids(dataset: Dataset, split: str, samples: list[Sample], limit: int = 5) -> list[Sample]:
    """`samples` after the adapter's own rule for repeated ids (`Dataset.disambiguate_ids`); raises
    DatasetError naming each id that still repeats and its entries (1-based positions in the split, in
    the adapter's order) and the label files — before any run record exists or a model runs, since a
    repeated id would overwrite a stored prediction and shrink every denominator."""
    samples = dataset.disambiguate_ids(split, samples)
    where: dict[str, list[int]] = {}
    for i, s in enumerate(samples, 1):
        where.setdefault(s.id, []).append(i)
    dup = {sid: rows for sid, rows in where.items() if len(rows) > 1}
    if dup:
        shown = "; ".join(f"{sid!r} at entries {', '.join(map(str, rows))}" for sid, rows in list(dup.items())[:limit])
        more = f" and {len(dup) - limit} more" if len(dup) > limit else ""
        files = ", ".join(str(f) for f in dataset.label_files(split)) or "the dataset"
        raise DatasetError(
            f"dataset {dataset.info.corpus!r}, split {split!r}: {len(dup)} sample id(s) occur more than once "
            f"({shown}{more}) in {files}; ids must be unique (each keys one stored prediction). Fix the ids, "
            "or use an adapter option that tells the rows apart"
        )
    return samples


def protocol_record(dataset: Dataset, split: str, samples: list[Sample]) -> dict[str, Any]:
    """What the split's protocol kept and dropped, for the run record: {"name", "kept": {label: n},
    "dropped": {raw label: n}, "warnings": [split sizes that differ from the published ones]}."""
    from collections import Counter

    proto = dataset.protocol(split)
    out: dict[str, Any] = {"name": proto.get("name", ""), "dropped": dict(proto.get("dropped") or {})}
    if dataset.info.labels:  # per class; a regression target has none
        out["kept"] = dict(sorted(Counter(str(s.target) for s in samples).items()))
    warnings = split_size_warnings(dataset.info.corpus, {split: len(samples)})
    if warnings:
        out["warnings"] = warnings
    return out
