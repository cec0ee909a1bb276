"""The render stage: a sample (+ its knowledge block) → the conversation a backend answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..core.errors import AffectbenchError
from ..core.specs import RunSpec
from ..core.types import DatasetInfo, Sample
from ..knowledge import SampleKnowledge
from ..prompts.base import Prompt
from .execution import Task


def renderer(
    spec: RunSpec, info: DatasetInfo, prompt: Prompt, knowledge: Mapping[str, SampleKnowledge]
) -> Callable[[Sample], Task]:
    """A function Sample → Task rendering the run's prompt with the sample's knowledge, the run's
    modalities and system prompt. A sample the prompt cannot render becomes a Task with its error
    ("render: ..."), so one bad sample costs one sample."""

    def render(sample: Sample) -> Task:
        k = knowledge.get(sample.id)
        try:
            conv = prompt.render(
                sample,
                info,
                knowledge=k.text if k else None,
                modalities=spec.media.modalities,
                system=spec.generation.system_prompt,
            )
            return Task(sample, conv)
        except AffectbenchError as e:
            return Task(sample, error=f"render: {e}")

    return render
