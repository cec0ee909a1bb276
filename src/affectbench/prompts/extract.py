"""The extractor's prompt: map another model's free-form answer onto the dataset's answer space.

Used by the `parse: {type: extractor}` policy (runner) for answers the template's rules cannot read
(no label or number in them), as AffectGPT / MER-UniBench map free-form emotion descriptions to
labels with a second LLM. The extractor's own answer is read back with the same rules.
"""

from __future__ import annotations

from ..core.types import DatasetInfo, Message, Part, TaskType

EXTRACTOR_VERSION = "extract-1"


def extractor_messages(answer: str, info: DatasetInfo, max_chars: int = 4000) -> list[Message]:
    """A text-only conversation asking which answer of `info`'s space `answer` states (or "none")."""
    if info.task is TaskType.REGRESSION:
        lo, hi = info.score_range  # type: ignore[misc]
        space = f"a single sentiment score from {lo:g} (strongly negative) to {hi:g} (strongly positive)"
        reply = "Reply with the number only"
    else:
        space = "exactly one of these labels: " + ", ".join(info.labels)
        reply = "Reply with the label only"
    text = (
        f"Another model described a clip's {info.task_name or 'affect'} as follows:\n"
        f'"""\n{answer.strip()[:max_chars]}\n"""\n'
        f"Which {space} does this description state? {reply}, or none if it states none."
    )
    return [Message("user", [Part.of_text(text)])]
