"""YAML + Jinja prompt templates: load, validate, render to Messages, parse answers back.

A template file (`templates/<name>.yaml`) declares everything that changes results: the
modalities it attaches, the user text (Jinja, StrictUndefined, sandboxed), the parse policy,
the knowledge budget, few-shot examples and a `version`. `extends: <name>` inherits another
template's keys (nested `parse`/`score` mappings are merged key by key).

Variables the `text` sees: `transcript` (None unless T is used, or when it is empty), `speaker` (only with
context, where it tells the target speaker apart), `context` (list of
{speaker, text}, the last `max_context_turns` turns; empty unless T is used), `knowledge`
(trimmed to `knowledge_budget`, or None), `shots` (list of {transcript, answer}; empty unless
T is used), `video`/`audio` (whether that part is attached), `clip` (a noun for what is
attached: "video clip", "audio clip", "utterance"), `labels`, `lo`/`hi` (score range as
short strings), `dataset`, `task`, `language`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..core.errors import ConfigError, DatasetError
from ..core.types import DatasetInfo, Message, Parsed, Part, Sample, TaskType, Turn
from .base import Prompt
from .parsing import LabelMatcher, ScorePolicy, fold, parse_label, parse_score, parse_text

TEMPLATES_DIR = Path(__file__).parent / "templates"
KNOWLEDGE_MARKER = "[… knowledge trimmed]"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParseSpec(_Strict):
    """The parse policy a template declares (see `parsing` for what each knob does)."""

    type: Literal["label", "score", "text"]
    json_keys: list[str] = Field(default_factory=list)
    synonyms: dict[str, list[str]] = Field(default_factory=dict)
    negations: dict[str, str] = Field(default_factory=dict)
    yes_no: dict[Literal["yes", "no"], str] = Field(default_factory=dict)
    words: dict[str, float] = Field(default_factory=dict, description="word -> fraction of the range half, -1..1")
    allow_words: bool = False
    out_of_range: Literal["skip", "clip"] = "skip"
    json_object: bool = False
    refusal_max_chars: int = 300

    @field_validator("yes_no", mode="before")
    @classmethod
    def _yaml_booleans(cls, v: Any) -> Any:
        """YAML 1.1 reads unquoted yes/no keys as booleans; take them back."""
        if isinstance(v, dict):
            return {({True: "yes", False: "no"}.get(k, k) if isinstance(k, bool) else k): x for k, x in v.items()}
        return v


class ScoreSpec(_Strict):
    """How scores are written (answer) and enumerated (options)."""

    decimals: int = Field(default=1, ge=0, le=4)
    option_steps: dict[str, float] = Field(
        default_factory=lambda: {"mosi": 1.0, "sims": 0.2},
        description="grid step per dataset name or metric suite; otherwise 1.0 for wide scales, a tenth of narrow ones",
    )


class Shot(_Strict):
    transcript: str
    answer: str | dict[str, str] = Field(
        description="an answer, or answers keyed by dataset name / metric suite / default"
    )


class TemplateSpec(_Strict):
    version: str = Field(min_length=1)
    kind: Literal["answer", "elicit"]
    task: Literal["classification", "regression", "any"] = "any"
    description: str = ""
    attach: list[Literal["video", "audio", "text"]]
    text: str = Field(min_length=1)
    parse: ParseSpec
    score: ScoreSpec = ScoreSpec()
    knowledge_budget: int = Field(default=1500, ge=50)
    max_context_turns: int = Field(default=12, ge=0)
    shots: list[Shot] = Field(default_factory=list)
    language: str = Field(
        default="en",
        exclude=True,  # not in dumps: English templates keep their fingerprints; others add it (see fingerprint)
        description="the language the template's text is written in",
    )


# ------------------------------------------------------------------------------------ loading


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"prompt template {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"prompt template {path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"prompt template {path} must be a YAML mapping of keys (version, kind, attach, text, parse)")
    return data


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in child.items():
        out[k] = {**base[k], **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def read_template(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A template's raw mapping with `extends` resolved (relative to the same folder)."""
    if path in _seen:
        chain = " -> ".join(p.name for p in (*_seen, path))
        raise ConfigError(f"prompt template {path}: key 'extends' forms a cycle ({chain})")
    data = _read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"prompt template {path}: key 'extends' must be a template name")
    parent_path = path.parent / f"{parent}.yaml"
    if not parent_path.exists():
        raise ConfigError(f"prompt template {path}: key 'extends' names {parent!r}, but {parent_path} does not exist")
    return _merge(read_template(parent_path, (*_seen, path)), data)


def _jinja_env():
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, autoescape=False)


def load_template(path: Path, name: str | None = None) -> TemplatePrompt:
    """Load and validate one template file; errors name the file and the key."""
    from jinja2 import TemplateSyntaxError

    data = read_template(path)
    try:
        spec = TemplateSpec.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"key '{'.'.join(str(x) for x in err['loc']) or '(top)'}': {err['msg']}" for err in e.errors()
        )
        raise ConfigError(f"prompt template {path}: {problems}") from None
    try:
        compiled = _jinja_env().from_string(spec.text)
    except TemplateSyntaxError as e:
        raise ConfigError(f"prompt template {path}: key 'text', line {e.lineno}: {e.message}") from None
    return TemplatePrompt(name or path.stem, spec, compiled, path)


# -------------------------------------------------------------------------------- knowledge trim


def trim_knowledge(text: str, budget: int, marker: str = KNOWLEDGE_MARKER) -> str:
    """Cut `text` to at most `budget` characters at a line or sentence end, then add `marker`.

    Deterministic: the same text and budget always give the same result. Falls back to the last
    space, then to a hard cut, when no boundary lies in the second half of the budget.
    """
    text = text.strip()
    if len(text) <= budget:
        return text
    room = max(0, budget - len(marker) - 1)
    head = text[:room]
    probe = head + " "
    cut = head.rfind("\n")  # a line end: cut before the newline
    for end in ".!?":  # a sentence end followed by white space: keep the full stop
        cut = max(cut, probe.rfind(end + " ") + 1 or -1, probe.rfind(end + "\n") + 1 or -1)
    for end in "。！？":  # CJK full stops need no space after them
        cut = max(cut, head.rfind(end) + 1 or -1)
    if cut < room // 2:
        space = head.rfind(" ")
        cut = space if space >= room // 2 else room
    return head[:cut].rstrip() + "\n" + marker


# ----------------------------------------------------------------------------------- the prompt


def _short(x: float) -> str:
    return f"{x:g}"


class TemplatePrompt(Prompt):
    """A Prompt backed by one YAML template."""

    def __init__(self, name: str, spec: TemplateSpec, compiled: Any, path: Path) -> None:
        self.name = name
        self.spec = spec
        self.version = spec.version
        self.path = path
        self._compiled = compiled
        self._per_info: dict[tuple[str, DatasetInfo], Any] = {}  # matcher / policy / shots, built once per dataset

    def __repr__(self) -> str:
        return f"TemplatePrompt({self.name!r}, version={self.version!r})"

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def attach(self) -> tuple[str, ...]:
        return tuple(self.spec.attach)

    @property
    def knowledge_budget(self) -> int:
        """Characters of knowledge the prompt's knowledge slot holds (longer text is trimmed)."""
        return self.spec.knowledge_budget

    @property
    def language(self) -> str:
        """The language the template is written in (ISO 639-1)."""
        return self.spec.language

    @cached_property
    def fingerprint(self) -> str:
        """name@version + a hash of the resolved template: changes when any wording or policy changes."""
        data = self.spec.model_dump(mode="json")  # `language` is excluded from dumps
        if self.spec.language != "en":
            data["language"] = self.spec.language
        content = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return f"{self.name}@{self.version}+{hashlib.sha256(content.encode()).hexdigest()[:10]}"

    # -- checks

    def check(self, info: DatasetInfo) -> None:
        """Refuse a template whose task does not fit the dataset; surface template typos now."""
        task = self.spec.task
        if task != "any" and task != info.task.value:
            raise ConfigError(
                f"prompt {self.name!r} ({self.path}) is for {task} datasets, but {info.corpus!r} is "
                f"{info.task.value}; pick a {info.task.value} prompt or 'default'"
            )
        dry = Sample(
            id="dry-run",
            transcript="dry run",
            target=None,
            media={"video": "dry.mp4", "audio": "dry.wav"},
            context=[Turn("earlier", "A")],
            speaker="A",
        )
        self.render(dry, info, knowledge="dry run knowledge.", modalities="TAV", system="s")
        self.render(Sample(id="dry-run", transcript="", target=None), info, modalities="A")

    # -- render

    def _cached(self, what: str, info: DatasetInfo, build: Callable[[DatasetInfo], Any]) -> Any:
        key = (what, info)
        if key not in self._per_info:
            self._per_info[key] = build(info)
        return self._per_info[key]

    def _shots(self, info: DatasetInfo) -> list[dict[str, str]]:
        """The few-shot examples in this dataset's label space (parsed once per dataset, not per render)."""
        return self._cached("shots", info, self._build_shots)

    def _build_shots(self, info: DatasetInfo) -> list[dict[str, str]]:
        out = []
        for shot in self.spec.shots:
            ans = shot.answer
            if isinstance(ans, dict):
                ans = ans.get(info.corpus, ans.get(info.metric_suite, ans.get("default")))
                if ans is None:
                    continue
            if self.spec.kind == "answer":
                got = self.parse(ans, info)
                if not got.ok or got.value is None:
                    continue  # this example's answer is not in this dataset's label space
                ans = self.answer(got.value, info)
            out.append({"transcript": shot.transcript, "answer": ans})
        return out

    def _span(self, sample: Sample, kind: str, from_video: bool) -> tuple[float, float] | None:
        applies = sample.meta.get("span_applies_to") if sample.meta else None
        if from_video or applies in (None, "all", kind):
            return sample.span
        return None

    def render(
        self,
        sample: Sample,
        info: DatasetInfo,
        *,
        knowledge: str | None = None,
        modalities: str = "TAV",
        system: str | None = None,
    ) -> list[Message]:
        mods = (modalities or "").upper()
        bad = set(mods) - set("TAV")
        if not mods or bad:
            raise ConfigError(f"modalities must be a non-empty combination of T, A, V; got {modalities!r}")
        attach = set(self.spec.attach)
        parts: list[Part] = []
        video_path = sample.media.get("video") if sample.media else None
        audio_path = sample.media.get("audio") if sample.media else None
        has_video = bool("V" in mods and "video" in attach and video_path)
        if has_video:
            parts.append(Part(kind="video", path=video_path, span=self._span(sample, "video", True)))
        has_audio = bool("A" in mods and "audio" in attach and (audio_path or video_path))
        if has_audio:
            path = audio_path or video_path
            parts.append(Part(kind="audio", path=path, span=self._span(sample, "audio", not audio_path)))
        text_on = "T" in mods and "text" in attach
        turns = sample.context[-self.spec.max_context_turns :] if self.spec.max_context_turns else []
        lo, hi = info.score_range or (None, None)
        variables = {
            "transcript": sample.transcript.strip() if text_on and (sample.transcript or "").strip() else None,
            "speaker": sample.speaker if text_on and turns else None,  # a name helps only next to other turns
            "context": [{"speaker": t.speaker, "text": t.text} for t in turns] if text_on else [],
            "knowledge": trim_knowledge(knowledge, self.spec.knowledge_budget) if knowledge else None,
            "shots": self._shots(info) if text_on else [],
            "video": has_video,
            "audio": has_audio,
            "clip": "video clip" if has_video else "audio clip" if has_audio else "utterance",
            "labels": list(info.labels),
            "lo": _short(lo) if lo is not None else None,
            "hi": _short(hi) if hi is not None else None,
            "dataset": info.corpus,
            "task": info.task_name,
            "language": info.language,
        }
        text = self._render_text(variables)
        # sample facts for backends that read no prose (the `experts` knowledge writer, perception):
        # the dataset's language, and the transcript exactly when the prompt carries it (T is on)
        parts.append(
            Part(kind="text", text=text, data={"language": info.language, "transcript": variables["transcript"]})
        )
        messages = [Message("system", [Part.of_text(system)])] if system else []
        messages.append(Message("user", parts))
        return messages

    def _render_text(self, variables: dict[str, Any]) -> str:
        from jinja2 import TemplateError

        try:
            text = self._compiled.render(**variables)
        except TemplateError as e:
            raise ConfigError(f"prompt template {self.path}: key 'text': {e}") from None
        text = "\n".join(line.rstrip() for line in text.strip().splitlines())
        return re.sub(r"\n{3,}", "\n\n", text)

    # -- parse / answer / options

    def _matcher(self, info: DatasetInfo) -> LabelMatcher:
        return self._cached("matcher", info, self._build_matcher)

    def _build_matcher(self, info: DatasetInfo) -> LabelMatcher:
        p = self.spec.parse
        return LabelMatcher.build(info.labels, p.synonyms, p.negations, p.yes_no, p.json_keys)

    def _policy(self, info: DatasetInfo) -> ScorePolicy:
        return self._cached("policy", info, self._build_policy)

    def _build_policy(self, info: DatasetInfo) -> ScorePolicy:
        p = self.spec.parse
        lo, hi = info.score_range or (-math.inf, math.inf)
        words = tuple((fold(w), float(v)) for w, v in p.words.items())
        kwargs: dict[str, Any] = {"json_keys": tuple(p.json_keys)} if p.json_keys else {}
        return ScorePolicy(lo, hi, words=words, allow_words=p.allow_words, out_of_range=p.out_of_range, **kwargs)

    def parse(self, text: str, info: DatasetInfo) -> Parsed:
        p = self.spec.parse
        if p.type == "text":
            return parse_text(text, json_object=p.json_object, refusal_max_chars=p.refusal_max_chars)
        if p.type == "score" or info.task is TaskType.REGRESSION:
            return parse_score(text, self._policy(info))
        return parse_label(text, self._matcher(info))

    def _format_score(self, x: float) -> str:
        d = self.spec.score.decimals
        s = f"{round(x, d):.{d}f}"
        return s[1:] if re.fullmatch(r"-0\.?0*", s) else s

    def answer(self, target: str | float, info: DatasetInfo) -> str:
        if self.spec.kind == "elicit":
            raise ConfigError(f"prompt {self.name!r} elicits knowledge text; it has no canonical answer to train on")
        if info.task is TaskType.REGRESSION:
            try:
                x = float(target)
            except (TypeError, ValueError):
                raise DatasetError(f"dataset {info.corpus!r}: target {target!r} is not a number") from None
            if not math.isfinite(x):
                raise DatasetError(f"dataset {info.corpus!r}: target {target!r} is not a finite number")
            lo, hi = info.score_range  # type: ignore[misc]
            return self._format_score(min(max(x, lo), hi))
        for label in info.labels:
            if label == target:
                return label
        for label in info.labels:
            if fold(label) == fold(str(target)):
                return label
        raise DatasetError(
            f"dataset {info.corpus!r}: target {target!r} is not one of its labels ({', '.join(info.labels)})"
        )

    def grid(self, info: DatasetInfo) -> list[float]:
        """The regression answer grid: the dataset's scale in `option_steps` steps."""
        lo, hi = info.score_range  # type: ignore[misc]
        steps = self.spec.score.option_steps
        step = steps.get(info.corpus, steps.get(info.metric_suite))
        if step is None:
            step = 1.0 if hi - lo >= 4 else (hi - lo) / 10
        n = int(round((hi - lo) / step))
        return [round(lo + i * step, 6) + 0.0 for i in range(n + 1)]

    def options(self, info: DatasetInfo) -> list[str]:
        if self.spec.kind == "elicit":
            return []
        if info.task is TaskType.REGRESSION:
            return [self._format_score(x) for x in self.grid(info)]
        return list(info.labels)
