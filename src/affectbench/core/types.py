"""Plain data shared by every layer: samples, chat messages, dataset info, model outputs.

Nothing here imports a heavy dependency; these are the nouns of DESIGN.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

PartKind = Literal["text", "audio", "video", "image"]
Modality = Literal["T", "A", "V"]
ALL_MODALITIES: tuple[Modality, ...] = ("T", "A", "V")


class TaskType(str, Enum):
    """What a dataset asks for: a label from a fixed set, or a score on a scale."""

    CLASSIFICATION = "classification"
    REGRESSION = "regression"


@dataclass(frozen=True)
class Turn:
    """One earlier utterance of a dialogue, given as context."""

    text: str
    speaker: str | None = None


@dataclass
class Sample:
    """One clip of a dataset.

    `target` is a label name (classification) or a float (regression); `media` maps
    "video"/"audio" to file paths; `span` is (start, end) seconds when the clip is a
    segment of a longer file; `group` is the unit that samples share (video, dialogue,
    speaker) and drives grouped bootstrap.
    """

    id: str
    transcript: str
    target: str | float | None
    media: dict[str, str] = field(default_factory=dict)
    group: str = ""
    context: list[Turn] = field(default_factory=list)
    speaker: str | None = None
    span: tuple[float, float] | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: its corpus, task, label space and splits.

    `corpus` names what was measured (e.g. "mosi", or a manifest's own name); the registry key that
    read it is the *adapter* (`RunSpec.dataset.name`). `metric_suite` names the scoring convention
    ("mosi", "sims" or "classification");
    `score_range` is the regression scale; `labels` the class names in canonical order.
    """

    corpus: str
    task: TaskType
    labels: tuple[str, ...] = ()
    score_range: tuple[float, float] | None = None
    splits: tuple[str, ...] = ("train", "valid", "test")
    language: str = "en"
    metric_suite: str = "classification"
    task_name: str = ""  # sentiment, emotion, sarcasm, humour
    description: str = ""

    def __post_init__(self) -> None:
        if self.task is TaskType.CLASSIFICATION and not self.labels:
            raise ValueError(f"dataset {self.corpus!r}: a classification dataset needs labels")
        if self.task is TaskType.REGRESSION and self.score_range is None:
            raise ValueError(f"dataset {self.corpus!r}: a regression dataset needs score_range")


@dataclass
class Part:
    """One typed piece of a chat message.

    `path` points at the media file; `span` cuts a segment of it; `data` is filled by a
    backend's `prepare` step with decoded media (frames, waveform) ahead of generation.
    """

    kind: PartKind
    text: str | None = None
    path: str | None = None
    span: tuple[float, float] | None = None
    data: Any = None

    @staticmethod
    def of_text(text: str) -> Part:
        return Part(kind="text", text=text)


@dataclass
class Message:
    role: Literal["system", "user", "assistant"]
    parts: list[Part]

    @property
    def text(self) -> str:
        """The message's text parts joined, for text-only backends and logs."""
        return "".join(p.text or "" for p in self.parts if p.kind == "text")


@dataclass
class Generation:
    """What a backend returns for one conversation.

    `modalities` lists the modalities whose tokens actually reached the model (the audio of a
    video is easy to drop silently); `scores` holds per-option log-likelihoods when the
    backend was asked to score candidate answers instead of generating. `finish_reason` says why
    generation ended: "stop" (an end token or stop string), "length" (cut at max_new_tokens) or
    None when the backend cannot tell. `reasoning` keeps a separate reasoning text (a server's
    `reasoning_content`) apart from the answer in `text`.
    """

    text: str
    modalities: tuple[str, ...] = ()
    n_input_tokens: int | None = None
    n_output_tokens: int | None = None
    scores: dict[str, float] | None = None
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    finish_reason: str | None = None
    reasoning: str | None = None


# Why an answer could not be read: every unread prediction carries exactly one of these.
UNREAD_REASONS: tuple[str, ...] = (
    "empty",  # no text at all
    "truncated",  # cut at max_new_tokens (finish_reason "length") or inside an unclosed reasoning block
    "refused",  # the model declined to answer
    "reasoning_only",  # only reasoning text came back, no answer
    "ambiguous",  # two or more answers compete and nothing decides between them
    "no_label",  # text with no label or number of the answer space in it
    "out_of_range",  # a number outside the dataset's scale
    "scoring_failed",  # option scoring could not tell the options apart (e.g. ambiguous first tokens)
    "model_error",  # the backend or media failed for this sample; no answer exists
)


@dataclass(frozen=True)
class Parsed:
    """A parsed model answer: `value` is a label or a score, None when unparseable.

    `reason` is the human description (how it matched, or why not); `unread` is the machine
    reason of an unread answer, one of UNREAD_REASONS (None when `ok`; "no_label" when an
    unread answer is built without one).
    """

    value: str | float | None
    ok: bool
    reason: str = ""
    unread: str | None = None

    def __post_init__(self) -> None:
        if self.ok:
            if self.unread is not None:
                raise ValueError(f"a read answer has no unread reason (got {self.unread!r})")
        elif self.unread is None:
            object.__setattr__(self, "unread", "no_label")
        elif self.unread not in UNREAD_REASONS:
            raise ValueError(f"unread reason {self.unread!r} is not one of {', '.join(UNREAD_REASONS)}")
