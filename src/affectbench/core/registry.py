"""Name → lazily imported object. Registries never import their targets until asked."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .errors import AffectbenchError, MissingExtra


@dataclass(frozen=True)
class Entry:
    target: str  # "module:attr"
    extra: str = ""  # the pip extra that provides its dependencies
    summary: str = ""


class Registry:
    """A named table of lazy `module:attr` targets."""

    def __init__(self, kind: str, entries: dict[str, Entry]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names())
            raise AffectbenchError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def load(self, name: str) -> Any:
        """Import and return the object registered as `name`."""
        entry = self.entry(name)
        module, _, attr = entry.target.partition(":")
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            missing = (e.name or "").split(".")[0]
            if entry.extra and missing and not missing.startswith("affectbench"):
                raise MissingExtra(missing, entry.extra, f"{self.kind} {name!r}") from e
            raise
        return getattr(mod, attr)

    def register(self, name: str, target: str, extra: str = "", summary: str = "") -> None:
        self._entries[name] = Entry(target, extra, summary)


DATASETS = Registry(
    "dataset",
    {
        "mosi": Entry("affectbench.datasets.mmsa:MOSI", summary="CMU-MOSI sentiment, MMSA layout"),
        "mosei": Entry("affectbench.datasets.mmsa:MOSEI", summary="CMU-MOSEI sentiment, MMSA layout"),
        "sims": Entry("affectbench.datasets.mmsa:SIMS", summary="CH-SIMS sentiment, MMSA layout"),
        "simsv2": Entry("affectbench.datasets.mmsa:SIMSv2", summary="CH-SIMS v2, MMSA layout"),
        "meld": Entry("affectbench.datasets.meld:MELDEmotion", summary="MELD 7-way emotion"),
        "meld-sentiment": Entry("affectbench.datasets.meld:MELDSentiment", summary="MELD 3-way sentiment"),
        "iemocap": Entry("affectbench.datasets.iemocap:IEMOCAP6", summary="IEMOCAP 6-way emotion"),
        "iemocap4": Entry("affectbench.datasets.iemocap:IEMOCAP4", summary="IEMOCAP 4-way emotion"),
        "mustard": Entry("affectbench.datasets.mustard:MUStARD", summary="MUStARD sarcasm"),
        "urfunny": Entry("affectbench.datasets.urfunny:URFunny", summary="UR-FUNNY v2 humour"),
        "manifest": Entry("affectbench.datasets.manifest:Manifest", summary="any corpus from a CSV/JSONL manifest"),
        "demo": Entry("affectbench.datasets.demo:Demo", summary="synthetic demo clips (MMSA layout)"),
    },
)

MODELS = Registry(
    "model backend",
    {
        "scripted": Entry("affectbench.models.scripted:ScriptedModel", summary="deterministic test double"),
        "hf": Entry("affectbench.models.hf:HFModel", extra="hf", summary="transformers omni/audio/vision chat models"),
        "vllm": Entry("affectbench.models.vllm:VLLMModel", extra="vllm", summary="vLLM offline engine"),
        "openai": Entry(
            "affectbench.models.openai:OpenAIModel", extra="openai", summary="OpenAI-compatible chat server"
        ),
        "cascade": Entry(
            "affectbench.models.cascade:CascadeModel",
            extra="embedded",
            summary="embedded default: perception + small text LLM",
        ),
        "experts": Entry(
            "affectbench.models.cascade:ExpertsModel",
            extra="embedded",
            summary="perception models as a knowledge writer",
        ),
    },
)

METRIC_SUITES = Registry(
    "metric suite",
    {
        "mosi": Entry("affectbench.metrics.mmsa:mosi_scores", summary="MMSA MOSI/MOSEI suite"),
        "sims": Entry("affectbench.metrics.mmsa:sims_scores", summary="MMSA CH-SIMS suite"),
        "classification": Entry(
            "affectbench.metrics.classification:classification_scores", summary="accuracy, weighted/macro F1, recall"
        ),
    },
)

# Run kinds: an entry is a callable (runner, spec) -> RunRecord. The engine dispatches through this
# table and imports no kind's implementation; a new kind (e.g. a readout head) is one line here.
RUN_KINDS = Registry(
    "run kind",
    {
        "eval": Entry(
            "affectbench.engine.runner:infer_kind", summary="render, generate or score options, parse, score"
        ),
        "knowledge": Entry("affectbench.engine.runner:infer_kind", summary="per-sample knowledge text (GKP)"),
        "finetune": Entry("affectbench.finetune:run_kind", extra="finetune", summary="LoRA SFT on the eval prompts"),
        "readout": Entry(
            "affectbench.finetune.readout:run_kind",
            extra="finetune",
            summary="a probe or LoRA+head on a hidden state instead of generated text",
        ),
    },
)
