"""Experiment files: strict YAML → an ordered list of RunSpecs (dependencies first).

```yaml
workspace: ./workspace
defaults: {dataset: {name: demo, root: ./demo-data}, split: test}
exec: {batch_size: 8}
runs:
  - name: experts                       # knowledge written by the perception models
    kind: knowledge
    model: {backend: experts}
    prompt: describe
  - name: zeroshot
    model: {backend: cascade}
    matrix: {media.modalities: [T, TAV]}  # expands into one run per value
  - name: gkp
    model: {backend: cascade}
    knowledge: [experts]                # by entry name
```

A `knowledge` or `finetune` entry that other entries reference is a recipe: it is derived for
each referencing run (same dataset, limit, seed and prompt language; `model: self` means the
referencing run's model) and runs before it. A knowledge recipe also takes the run's media settings
(its own `media.modalities`, if any, intersected with the run's: a T-only row gets knowledge made
from the text alone) and system prompt. An entry whose model names another backend than the
defaults' does not inherit the default model's name and options. Unknown and duplicate keys are
errors naming the key and its line.
"""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .core.errors import ConfigError
from .core.specs import ExecSpec, FinetuneSpec, MediaSpec, RunSpec


class _Loader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys and remembers each key's line."""


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict = {}
    lines: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise ConfigError(f"{loader.name}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node, deep=deep)
        lines[key] = key_node.start_mark.line + 1
    return _LinedDict(mapping, lines)


class _LinedDict(dict):
    """A dict that knows the source line of each key."""

    def __init__(self, data: dict, lines: dict) -> None:
        super().__init__(data)
        self.lines = lines


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, name: str = "<experiment>") -> Any:
    loader = _Loader(text)
    loader.name = name  # type: ignore[attr-defined]
    try:
        return loader.get_single_data()
    except yaml.YAMLError as e:
        raise ConfigError(f"{name}: not valid YAML: {e}") from None
    finally:
        loader.dispose()


class RunEntry(BaseModel):
    """One entry of `runs:` as the user writes it (before defaults, matrix and references)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: Literal["eval", "knowledge", "finetune", "readout"] = "eval"
    dataset: dict[str, Any] | None = None
    split: str | None = None
    model: dict[str, Any] | Literal["self"] | None = None
    prompt: str | None = None
    knowledge: list[str] = Field(default_factory=list)
    knowledge_policy: Literal["keep", "mask", "drop"] | None = None
    prompt_language: Literal["auto", "en", "zh"] | None = None
    generation: dict[str, Any] | None = None
    parse: dict[str, Any] | None = None
    media: dict[str, Any] | None = None
    finetune: dict[str, Any] | None = None
    readout: dict[str, Any] | None = None
    limit: int | None = None
    seed: int | None = None
    matrix: dict[str, list[Any]] = Field(default_factory=dict)


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace: str | None = None
    defaults: dict[str, Any] = Field(default_factory=dict)
    exec: ExecSpec = ExecSpec()
    runs: list[RunEntry]


def _line_of(data: Any, loc: tuple) -> int | None:
    """The source line of the deepest key of `loc` found in the parsed YAML."""
    line, node = None, data
    for part in loc:
        if isinstance(node, _LinedDict) and part in node:
            line = node.lines.get(part, line)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            break
    return line


def _validation_message(e: ValidationError, data: Any, name: str, where: str = "") -> str:
    lines = []
    for err in e.errors():
        loc = tuple(err["loc"])
        line = _line_of(data, loc)
        key = ".".join(str(p) for p in loc)
        at = f"{name}:{line}" if line else name
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"{at}: {where}{key}: {msg}")
    return "\n".join(lines)


def _set_path(data: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        if not isinstance(node.get(k), dict):
            node[k] = {}
        node = node[k]
    node[keys[-1]] = value


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    """`key=value` strings → (dotted key, YAML-parsed value)."""
    out = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        out.append((key.strip(), yaml.safe_load(raw) if raw.strip() else ""))
    return out


class Plan(BaseModel):
    """An experiment resolved into executable runs."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    workspace: Path
    exec: ExecSpec
    runs: list[RunSpec]
    names: dict[str, list[str]]  # entry name → run ids it produced


def load_experiment(path: str | Path, overrides: list[str] = ()) -> Plan:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read experiment file {path}: {e.strerror}") from None
    return plan_experiment(text, name=str(path), overrides=overrides)


def plan_experiment(text: str, name: str = "<experiment>", base_dir: Path | None = None, overrides=()) -> Plan:
    """Resolve an experiment; relative paths (workspace, dataset roots) are taken from `base_dir`,
    the current directory by default, so packaged experiment files work from anywhere."""
    base_dir = base_dir or Path.cwd()
    data = load_yaml(text, name)
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: an experiment file is a mapping with at least a `runs:` list")
    raw = dict(data)
    run_overrides = []
    for key, value in parse_overrides(list(overrides)):
        if key == "workspace" or key.startswith("exec."):
            _set_path(raw, key, value)
        else:
            run_overrides.append((key, value))
    try:
        exp = Experiment.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_validation_message(e, data, name)) from None
    entries = {}
    for i, entry in enumerate(exp.runs):
        if entry.name in entries:
            line = _line_of(data, ("runs", i, "name"))
            raise ConfigError(f"{name}:{line}: two runs are named {entry.name!r}; names must be unique")
        entries[entry.name] = entry
    workspace = Path(exp.workspace or "workspace")
    if not workspace.is_absolute():
        workspace = base_dir / workspace
    planner = _Planner(exp, entries, data, name, run_overrides, base_dir)
    return Plan(workspace=workspace, exec=exp.exec, runs=planner.plan(), names=planner.names)


class _Planner:
    def __init__(self, exp: Experiment, entries: dict[str, RunEntry], data, name, overrides, base_dir: Path):
        self.exp, self.entries, self.data, self.name = exp, entries, data, name
        self.overrides, self.base_dir = overrides, base_dir
        self.runs: list[RunSpec] = []
        self.seen: set[tuple[str, str]] = set()
        self.names: dict[str, list[str]] = {}
        referenced = set()
        for e in entries.values():
            referenced.update(e.knowledge)
            adapter = e.model.get("adapter") if isinstance(e.model, dict) else None
            if adapter in entries:
                referenced.add(adapter)
        for ref in referenced:
            if ref not in entries:
                raise ConfigError(f"{name}: a run references {ref!r}, but no run has that name")
        self.referenced = referenced

    def plan(self) -> list[RunSpec]:
        for entry in self.exp.runs:
            if entry.name in self.referenced:
                continue  # a recipe: derived for each run that references it
            for fields in self._expand(entry):
                self._add(entry.name, self._spec(entry, fields, parent=None))
        return self.runs

    def _expand(self, entry: RunEntry) -> list[dict]:
        base = entry.model_dump(exclude={"name", "matrix", "knowledge"}, exclude_none=True)
        defaults = self.exp.defaults
        own, dflt = base.get("model"), defaults.get("model")
        if (
            isinstance(own, dict)
            and isinstance(dflt, dict)
            and own.get("backend", dflt.get("backend")) != dflt.get("backend")
        ):  # another backend: the default model's name and options mean nothing to it
            defaults = {k: v for k, v in defaults.items() if k != "model"}
        base = _merge(defaults, base)
        for key, value in self.overrides:
            _set_path(base, key, value)
        if not entry.matrix:
            return [base]
        keys = list(entry.matrix)
        for k in keys:
            if not isinstance(entry.matrix[k], list) or not entry.matrix[k]:
                raise ConfigError(f"{self.name}: run {entry.name!r}: matrix.{k} must be a non-empty list")
        out = []
        for combo in itertools.product(*(entry.matrix[k] for k in keys)):
            fields = copy.deepcopy(base)
            for k, v in zip(keys, combo, strict=True):
                _set_path(fields, k, v)
            out.append(fields)
        return out

    def _spec(
        self, entry: RunEntry, fields: dict, parent: RunSpec | None, parent_entry: RunEntry | None = None
    ) -> RunSpec:
        fields = copy.deepcopy(fields)
        knowledge_names = entry.knowledge
        if parent is not None and parent_entry is not None and entry.kind == "finetune" and parent.kind == "eval":
            knowledge_names = self._parity(entry, fields, parent, parent_entry)
        if parent is not None:  # a derived recipe inherits what makes it match its parent
            fields["dataset"] = parent.dataset.model_dump()
            fields["limit"], fields["seed"] = parent.limit, parent.seed
            fields["prompt_language"] = fields.get("prompt_language") or parent.prompt_language
            if fields.get("model") in (None, "self"):
                fields["model"] = parent.model.model_copy(update={"adapter": None}).model_dump()
            if entry.kind == "knowledge":
                self._derive_knowledge(entry, fields, parent)
        elif fields.get("model") == "self":
            raise ConfigError(f"{self.name}: run {entry.name!r} says model: self but no run references it")
        ds = fields.get("dataset")
        if isinstance(ds, dict) and ds.get("root") and not Path(ds["root"]).is_absolute():
            ds["root"] = str((self.base_dir / ds["root"]).resolve())
        model = fields.get("model")
        adapter_of = model.get("adapter") if isinstance(model, dict) else None
        fields["knowledge"] = []
        try:
            spec = RunSpec.model_validate(fields)
        except ValidationError as e:
            idx = next(i for i, r in enumerate(self.exp.runs) if r.name == entry.name)
            msg = _validation_message(e, self.data, self.name, where=f"run {entry.name!r}: ")
            line = _line_of(self.data, ("runs", idx))
            raise ConfigError(msg.replace(f"{self.name}: ", f"{self.name}:{line}: ") if line else msg) from None
        # references: knowledge recipes and an adapter from a finetune recipe
        kids = []
        for ref in knowledge_names:
            kentry = self.entries[ref]
            if kentry.kind != "knowledge":
                raise ConfigError(
                    f"{self.name}: run {entry.name!r} lists {ref!r} as knowledge, but it is a {kentry.kind} run"
                )
            ksplits = [spec.split]
            if spec.kind in ("finetune", "readout"):  # a readout also reads its train/valid splits
                ft = spec.finetune or FinetuneSpec()
                ksplits = [ft.train_split] + ([ft.valid_split] if ft.valid_split else [])
                if spec.kind == "readout" and spec.split not in ksplits:
                    ksplits.append(spec.split)
            for split in ksplits:
                kbase = self._expand(kentry)[0]
                kbase["split"] = split
                kspec = self._spec(kentry, kbase, parent=spec)
                self._add(ref, kspec)
                if kspec.run_id not in kids:
                    kids.append(kspec.run_id)
        update: dict[str, Any] = {"knowledge": kids}
        if adapter_of in self.entries:
            fentry = self.entries[adapter_of]
            if fentry.kind != "finetune":
                raise ConfigError(
                    f"{self.name}: run {entry.name!r} uses {adapter_of!r} as adapter, but it is a {fentry.kind} run"
                )
            fspec = self._spec(fentry, self._expand(fentry)[0], parent=spec, parent_entry=entry)
            self._add(adapter_of, fspec)
            update["model"] = spec.model.model_copy(update={"adapter": fspec.run_id})
        return spec.model_copy(update=update)

    def _derive_knowledge(self, entry: RunEntry, fields: dict, parent: RunSpec) -> None:
        """A knowledge recipe sees what its referencing run sees, no more.

        - media: the parent's media settings (modalities and budgets: fps, frames, pixels, seconds);
          modalities the recipe names itself are intersected with the parent's (a T-only eval gets
          T-only knowledge), and an empty intersection is an error naming both.
        - generation.system_prompt: the parent's, unless the recipe sets its own.
        """
        media = dict(fields.get("media") or {})
        own = entry.media.get("modalities") if entry.media else None
        mods = parent.media.modalities
        if own is not None:
            mods = "".join(m for m in parent.media.modalities if m in str(own).upper())
            if not mods:
                raise ConfigError(
                    f"{self.name}: knowledge run {entry.name!r} uses modalities {own!r}, but the run that "
                    f"references it uses {parent.media.modalities!r}: its knowledge would bring in modalities "
                    "the run claims it does not use"
                )
        own_media = entry.media or {}
        merged = parent.media.model_dump()
        merged.update({k: v for k, v in own_media.items() if k != "modalities"})
        merged.update(modalities=mods)
        fields["media"] = {**media, **merged}
        gen = dict(fields.get("generation") or {})
        if "system_prompt" not in (entry.generation or {}):
            gen["system_prompt"] = parent.generation.system_prompt
        fields["generation"] = gen

    def _parity(self, entry: RunEntry, fields: dict, parent: RunSpec, parent_entry: RunEntry) -> list[str]:
        """Make a fine-tune recipe train on the inputs its adapter is evaluated with: prompt, prompt language,
        media, system prompt, knowledge sources and knowledge policy come from the eval run. A value the recipe sets
        itself must be equal, else a ConfigError names the field. Returns the knowledge entry names."""
        own = entry.model_dump(exclude_unset=True)

        def refuse(field: str, mine: Any, theirs: Any) -> None:
            raise ConfigError(
                f"{self.name}: fine-tune {entry.name!r} sets {field} = {mine!r}, but run {parent_entry.name!r} "
                f"evaluates its adapter with {field} = {theirs!r}; training and evaluation inputs must match "
                f"(drop {field} from {entry.name!r}: it is taken from the eval run)"
            )

        if "prompt" in own and own["prompt"] != parent.prompt:
            refuse("prompt", own["prompt"], parent.prompt)
        fields["prompt"] = parent.prompt
        if own.get("prompt_language") is not None and own["prompt_language"] != parent.prompt_language:
            refuse("prompt_language", own["prompt_language"], parent.prompt_language)
        fields["prompt_language"] = parent.prompt_language
        if "knowledge_policy" in own and own["knowledge_policy"] != parent.knowledge_policy:
            refuse("knowledge_policy", own["knowledge_policy"], parent.knowledge_policy)
        fields["knowledge_policy"] = parent.knowledge_policy
        parent_media = parent.media.model_dump(mode="json")
        for key, value in (own.get("media") or {}).items():
            if (
                key in parent_media
                and MediaSpec.model_validate({key: value}).model_dump(mode="json")[key] != parent_media[key]
            ):
                refuse(f"media.{key}", value, parent_media[key])
        fields["media"] = parent_media
        system = parent.generation.system_prompt
        if "system_prompt" in (own.get("generation") or {}) and own["generation"]["system_prompt"] != system:
            refuse("generation.system_prompt", own["generation"]["system_prompt"], system)
        fields.setdefault("generation", {})["system_prompt"] = system
        if "knowledge" in own and list(entry.knowledge) != list(parent_entry.knowledge):
            refuse("knowledge", list(entry.knowledge), list(parent_entry.knowledge))
        return list(parent_entry.knowledge)

    def _add(self, name: str, spec: RunSpec) -> None:
        key = (spec.run_id, spec.split)
        if key in self.seen:
            return
        self.seen.add(key)
        self.runs.append(spec)
        ids = self.names.setdefault(name, [])
        if spec.run_id not in ids:
            ids.append(spec.run_id)
