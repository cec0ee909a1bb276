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

from ..core.errors import ConfigError
from ..core.types import DatasetInfo, TaskType
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
    "localized_name",
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


PROMPT_LANGUAGES = ("auto", "en", "zh")


def localized_name(name: str, info: DatasetInfo, language: str = "auto") -> str:
    """The packaged template `name` resolves to in a prompt language.

    `language` "auto" takes the dataset's language (`info.language`) where a variant
    `<name>_<lang>.yaml` exists, else the template itself (English); "en" is the template itself;
    any other code requires the variant and raises ConfigError naming it when it is missing.
    Paths to .yaml files are returned unchanged (the file is the choice).
    """
    if language not in PROMPT_LANGUAGES:
        raise ConfigError(f"prompt language must be one of {', '.join(PROMPT_LANGUAGES)}; got {language!r}")
    if name == "default":
        name = default_prompt_name(info)
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return name
    want = info.language if language == "auto" else language
    if want == "en":
        return name
    variant = f"{name}_{want}"
    if (TEMPLATES_DIR / f"{variant}.yaml").is_file():
        return variant
    if language == "auto":
        return name
    raise ConfigError(f"prompt {name!r} has no {want!r} variant ({variant}.yaml); use prompt_language: auto or en")


def load_prompt(name: str, info: DatasetInfo, language: str = "en") -> TemplatePrompt:
    """Load a template by name (or .yaml path) in prompt `language` and check that it fits `info`'s task.

    `language` "en" (the default here) loads `name` itself; "auto" or a code picks the variant
    as `localized_name` says. The loaded prompt's `name` is the template actually chosen.
    """
    name = localized_name(name, info, language)
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
