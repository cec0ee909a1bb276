"""Prompts: render a Sample (+ knowledge) to chat Messages and parse the model's answer back.

`load_prompt(name, info)` gives a `Prompt`; "default" picks the task's template (sentiment
regression → `sentiment_score`, sentiment classes → `sentiment_polarity`, `emotion`, `sarcasm`,
`humour`, anything else → `classify`). Templates are YAML + Jinja files in `templates/`; a
path to a `.yaml` file works too. Knowledge elicitation templates (`describe*`) return the
cleaned text from `parse`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from ..errors import ConfigError
from ..types import DatasetInfo, TaskType
from .base import Prompt
from .parsing import parse_label, parse_score, parse_text
from .template import TEMPLATES_DIR, TemplatePrompt, load_template, trim_knowledge

__all__ = [
    "Prompt",
    "TemplatePrompt",
    "default_prompt_name",
    "list_prompts",
    "load_prompt",
    "load_template",
    "parse_label",
    "parse_score",
    "parse_text",
    "prompt_summaries",
    "trim_knowledge",
]

_DEFAULT_BY_TASK = {
    "sentiment": "sentiment_polarity",
    "emotion": "emotion",
    "sarcasm": "sarcasm",
    "humour": "humour",
    "humor": "humour",
}


def list_prompts() -> list[str]:
    """Names of the packaged templates ("default" is an alias resolved per dataset)."""
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml"))


def default_prompt_name(info: DatasetInfo) -> str:
    """The template "default" means for this dataset."""
    if info.task is TaskType.REGRESSION:
        return "sentiment_score"
    return _DEFAULT_BY_TASK.get(info.task_name.lower(), "classify")


def load_prompt(name: str, info: DatasetInfo) -> TemplatePrompt:
    """Load a template by name (or .yaml path) and check that it fits `info`'s task."""
    if name == "default":
        name = default_prompt_name(info)
    if name.endswith((".yaml", ".yml")) or "/" in name:
        path = Path(name).expanduser()
        if not path.is_file():
            raise ConfigError(f"prompt template file {path} does not exist")
        prompt = load_template(path)
    else:
        path = TEMPLATES_DIR / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(["default", *list_prompts()])
            raise ConfigError(f"unknown prompt {name!r}; known: {known} (or a path to a .yaml template)")
        prompt = _packaged(str(path), path.stat().st_mtime_ns, name)
    prompt.check(info)
    return prompt


@functools.lru_cache(maxsize=128)
def _packaged(path: str, mtime_ns: int, name: str) -> TemplatePrompt:
    """Packaged templates are parsed once per process (re-read if the file changes)."""
    return load_template(Path(path), name)


def prompt_summaries() -> dict[str, str]:
    """name → one-line description, for `affectbench ls prompts`."""
    out = {}
    for name in list_prompts():
        try:
            out[name] = load_template(TEMPLATES_DIR / f"{name}.yaml").spec.description
        except ConfigError as e:
            out[name] = f"(broken: {e})"
    return out
