"""Training pairs: (conversation, answer) built with the same `Prompt.render` as evaluation.

Train and eval prompts cannot drift because both come from `Prompt.render` with the same
modalities, system prompt and knowledge; the target is `Prompt.answer(target)`, the canonical
string that the prompt's parser accepts (label names; scores on the template's grid).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core.errors import AffectbenchError
from ..core.specs import RunSpec
from ..core.types import DatasetInfo, Sample
from ..models.base import Conversation
from ..prompts.base import Prompt

if TYPE_CHECKING:
    from ..datasets.base import Dataset

log = logging.getLogger(__name__)


@dataclass
class Pair:
    """One training example: the rendered conversation and the answer the model should give."""

    sample: Sample
    conversation: Conversation
    answer: str
    has_knowledge: bool = False


@dataclass
class PairSet:
    pairs: list[Pair]
    skipped: dict[str, int] = field(default_factory=dict)  # reason → count

    def __len__(self) -> int:
        return len(self.pairs)


def build_pairs(
    samples: list[Sample],
    info: DatasetInfo,
    prompt: Prompt,
    *,
    knowledge: dict[str, str] | None = None,
    modalities: str = "TAV",
    system: str | None = None,
) -> PairSet:
    """Render each sample (with its knowledge, when given) and pair it with its canonical answer.

    Samples without a target, or whose target the prompt cannot write, are skipped and counted.
    """
    knowledge = knowledge or {}
    out: list[Pair] = []
    skipped: dict[str, int] = {}
    for s in samples:
        if s.target is None:
            skipped["no target"] = skipped.get("no target", 0) + 1
            continue
        try:
            answer = prompt.answer(s.target, info)
            conv = prompt.render(s, info, knowledge=knowledge.get(s.id), modalities=modalities, system=system)
        except AffectbenchError as e:
            key = type(e).__name__
            skipped[key] = skipped.get(key, 0) + 1
            log.warning("finetune: skipping sample %s: %s", s.id, e)
            continue
        out.append(Pair(s, conv, answer, bool(knowledge.get(s.id))))
    return PairSet(out, skipped)


def pairs_for_spec(
    spec: RunSpec, dataset: Dataset, split: str, knowledge: dict[str, str], limit: int | None = None
) -> PairSet:
    """The pairs of a finetune run's split: the same sample subset its knowledge runs covered.

    `dataset` is the run's dataset, opened once by the caller for every split it trains or validates on.
    """
    from ..datasets import select_samples
    from ..prompts import load_prompt

    info = dataset.info
    prompt = load_prompt(spec.prompt, info, spec.prompt_language)
    samples = select_samples(dataset.load(split), spec.limit, spec.seed)
    if limit is not None:
        samples = select_samples(samples, limit, spec.seed)
    return build_pairs(
        samples,
        info,
        prompt,
        knowledge=knowledge,
        modalities=spec.media.modalities,
        system=spec.generation.system_prompt,
    )


def summary(ps: PairSet) -> dict[str, Any]:
    return {"n": len(ps), "with_knowledge": sum(p.has_knowledge for p in ps.pairs), "skipped": ps.skipped}
