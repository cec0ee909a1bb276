"""Contextual calibration's prior: the run's template scored on content-free inputs (Zhao et al. 2021,
"Calibrate Before Use", arXiv 2102.09690)."""

from __future__ import annotations

from ..core.errors import AffectbenchError
from ..core.specs import RunSpec
from ..core.types import DatasetInfo, Sample
from ..knowledge import SampleKnowledge
from ..models.options import CONTENT_FREE, content_free_prior
from ..prompts.base import Prompt
from .execution import Call, Executor
from .render import renderer


def contextual_prior(
    spec: RunSpec, info: DatasetInfo, prompt: Prompt, executor: Executor, call: Call, knowledge: bool
) -> dict:
    """log p_cf per option: the transcript (and the knowledge slot, when the run uses knowledge)
    holds each of `CONTENT_FREE` ("N/A", "", "[MASK]"); no media. Raises AffectbenchError naming
    the content-free input whose scoring failed."""
    samples = [Sample(id=f"__content_free_{i}__", transcript=t, target=None) for i, t in enumerate(CONTENT_FREE)]
    texts = {s.id: SampleKnowledge(s.transcript or "N/A") for s in samples} if knowledge else {}
    render = renderer(spec, info, prompt, texts)
    runs = []
    for batch in executor.answer((render(s) for s in samples), call):
        for t in batch:
            g = t.generation
            if t.error or g is None or g.scores is None:
                why = t.error or (g.meta.get("scoring_error") if g else None) or "no output"
                raise AffectbenchError(
                    f"contextual calibration: scoring the content-free input {t.sample.transcript!r} failed: {why}"
                )
            runs.append(g.scores)
    return content_free_prior(runs)
