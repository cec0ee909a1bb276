"""The first stage of a run: which samples it reads, with what prompt, and the fingerprints of that data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.specs import RunSpec
from ..core.types import DatasetInfo, Sample
from ..datasets import Dataset, load_dataset, select_samples
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
    samples = select_samples(dataset.load(spec.split), spec.limit, spec.seed)
    if spec.kind == "eval":
        check_targets(((s.id, s.target) for s in samples), info)
    data = provenance.data_record(samples, dataset.label_files(spec.split), dataset.root)
    digests = data.pop("samples")
    data["split"] = dataset.describe_split(spec.split)  # which split/fold the number used, in words
    return Selection(dataset, info, prompt, samples, data, digests)
