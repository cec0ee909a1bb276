"""Every setting that changes results, as data. A RunSpec's canonical hash is its run id.

Settings that only change speed (batch size, workers; model options in `SPEED_ONLY_OPTIONS` such as
concurrency) live in `ExecSpec` or are dropped from the hash, and are
not part of the identity. Paths that only say where data lives (a dataset root) are recorded
but not hashed, so moving a dataset does not orphan its runs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .types import ALL_MODALITIES


class Strict(BaseModel):
    """Base for anything a user writes: unknown keys are errors; instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetRef(Strict):
    name: str
    root: str | None = Field(default=None, description="where the data lives; not part of the run id")
    options: dict[str, Any] = Field(default_factory=dict, description="adapter options, e.g. fold")
    version: str | None = Field(
        default=None,
        description="names one copy or version of a corpus (e.g. a relabelled release): part of the run id "
        "when set, so runs on two copies with the same options coexist",
    )


# Model options that only change speed or where things are kept, never an answer: not hashed, so
# raising concurrency (or moving to another GPU) keeps every run id. `device` is here as the issue
# tracker asked; the resolved device and dtype are recorded with each run segment instead.
SPEED_ONLY_OPTIONS = frozenset(
    {
        "concurrency",  # openai: parallel requests
        "timeout",
        "max_retries",
        "backoff",
        "device",
        "device_map",
        "score_batch",  # cascade: sequences per forward pass
        "media_cache",
        "media_cache_bytes",
        "cache_dir",
        "gpu_memory_utilization",  # vllm: KV-cache size
        "max_num_seqs",
        "delay",  # scripted test double: simulated latency
    }
)


class ModelSpec(Strict):
    backend: str
    name: str = Field(default="", description="checkpoint path/id, server model name, …")
    revision: str | None = Field(
        default=None, description="hub revision (branch, tag or commit) of a hub id; the resolved commit is recorded"
    )
    options: dict[str, Any] = Field(default_factory=dict)
    adapter: str | None = Field(default=None, description="finetune run id (or LoRA folder) to apply")

    def identity(self) -> dict[str, Any]:
        """The fields that change answers: everything but `SPEED_ONLY_OPTIONS` (and an unset revision,
        so run ids made before `revision` existed stay the same)."""
        data = self.model_dump(mode="json")
        data["options"] = {k: v for k, v in data["options"].items() if k not in SPEED_ONLY_OPTIONS}
        if data.get("revision") is None:
            data.pop("revision", None)
        return data


class GenerationSpec(Strict):
    mode: Literal["generate", "score"] = Field(
        default="generate", description="free generation, or log-likelihood of each candidate answer"
    )
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    system_prompt: str | None = None
    decision: Literal["auto", "argmax", "expected"] = Field(
        default="auto",
        description="score mode: how stored option scores become the answer (argmax; expected value over a "
        "numeric grid; auto = expected for numbers, argmax for labels). Part of the run id unless auto",
    )
    calibration: Literal["none", "length", "contextual", "batch"] = Field(
        default="contextual",
        description="score mode: none; length (log-likelihood per character, lm-eval-harness acc_norm); "
        "contextual (divide out the options' prior on content-free input, Zhao et al. 2021); batch (divide "
        "out the mean option probability over the run's samples, Zhou et al. 2024)",
    )


class MediaSpec(Strict):
    """How clips become model input. `preset` names a reference pipeline that replaces the frame and
    audio settings below (`qwen-omni-utils`: Qwen's own preprocessing, see `affectbench.media.reference`).

    The default frame budget (`max_pixels` = 768 x 28 x 28 = 602,112 px) is Qwen's per-frame cap: a
    decoded frame is never below what a Qwen processor then enlarges it to unless the source is smaller
    (the processor's 128-token minimum, 100,352 px, then applies; the hf backend records the grid).
    """

    modalities: str = Field(default="TAV", description="which of T (text), A (audio), V (video) reach the model")
    preset: Literal["qwen-omni-utils"] | None = Field(
        default=None, description="a reference preprocessing pipeline; replaces fps/frames/pixels/seconds below"
    )
    fps: float = 2.0
    min_frames: int = Field(default=4, description="fewest frames sampled from a clip (Qwen's reference uses 4)")
    max_frames: int = 32
    max_pixels: int = Field(default=768 * 28 * 28, description="frame area cap (px); Qwen's per-frame cap")
    sample_rate: int = 16000
    max_seconds: float = 60.0
    max_video_tokens: int | None = Field(
        default=None,
        description="total video tokens per prompt over every video part, as the family's processor counts "
        "them (frames as images included); None: 24,576 (the Qwen2.5-VL report's cap). Over it, frames are "
        "thinned uniformly and `video_truncated` recorded",
    )
    max_audio_seconds: float | None = Field(
        default=None, description="total audio seconds per prompt (None: no total cap); cuts are `audio_truncated`"
    )

    # prompt budgets (applied after decoding); left out of dumps that identify a run while unset
    BUDGET_FIELDS: ClassVar[tuple[str, ...]] = ("max_video_tokens", "max_audio_seconds")

    def settings(self) -> dict[str, Any]:
        """`model_dump()` without the budget fields left unset (fingerprints made before they existed hold)."""
        data = self.model_dump()
        for key in self.BUDGET_FIELDS:
            if data.get(key) is None:
                data.pop(key)
        return data

    @field_validator("modalities")
    @classmethod
    def _modalities(cls, v: str) -> str:
        v = v.upper()
        bad = set(v) - set(ALL_MODALITIES)
        if not v or bad:
            raise ValueError(f"modalities must be a non-empty combination of T, A, V; got {v!r}")
        return "".join(m for m in ALL_MODALITIES if m in v)


class FinetuneSpec(Strict):
    train_split: str = "train"
    valid_split: str | None = "valid"
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"
    train_towers: bool = False
    lr: float = 2e-4
    epochs: int = 1
    batch_size: int = 4
    grad_accum: int = 1
    max_length: int = Field(
        default=512, description="tokens per training pair; longer prompts lose their start (the answer is kept)"
    )
    train_limit: int | None = None
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        default="fp32", description="mixed precision of the trainer (bf16/fp16 need a GPU that supports them)"
    )
    gradient_checkpointing: bool = Field(default=False, description="recompute activations: less memory, slower")
    deepspeed: str | None = Field(
        default=None, description="DeepSpeed config JSON passed to the trainer (e.g. ZeRO-2/3); GPUs only"
    )
    threads: int | None = Field(
        default=None,
        description="torch CPU threads while training; CPU results depend on it (float summation order), so "
        "fix it to reproduce an adapter on another machine of the same kind (None: torch's default, the cores)",
    )
    # the optimisation recipe, explicit (see finetune.schedule and finetune.lora for what each value does)
    lr_scheduler: Literal["linear", "cosine", "constant"] = Field(
        default="linear", description="learning rate after the warm-up: linear or cosine decay to 0, or constant"
    )
    warmup_ratio: float = Field(
        default=0.05, ge=0.0, lt=1.0, description="warm-up length as a fraction of all optimizer steps (floored)"
    )
    warmup_steps: int | None = Field(
        default=None, ge=0, description="warm-up length in optimizer steps; replaces warmup_ratio"
    )
    warmup_from_zero: bool = Field(
        default=False,
        description="True: transformers' linear warm-up, whose first optimizer step runs at lr 0 (what runs had "
        "before this field existed; the first-step guard then fails a run with a warm-up); False: warm-up step k "
        "(1-based) runs at lr * k / warmup_steps, so the first step trains",
    )
    weight_decay: float = Field(default=0.0, ge=0.0, description="AdamW decoupled weight decay (adapter weights)")
    max_grad_norm: float | None = Field(
        default=1.0, description="clip the global gradient norm to this value before each step (None: no clipping)"
    )
    loss_normalisation: Literal["tokens", "sequences"] = Field(
        default="tokens",
        description="tokens: summed cross-entropy over the loss tokens of the whole optimizer step (all micro-"
        "batches and ranks) / their count, so each token weighs the same; sequences: each pair's mean over its "
        "own loss tokens, averaged over the pairs of the step, so each pair weighs the same",
    )
    loss_tokens: Literal["completion", "answer"] = Field(
        default="completion",
        description="completion: the answer and the end-of-turn tokens the chat template writes after it (the "
        "model learns to stop); answer: the answer's tokens only",
    )

    # fields added after run ids were first published; left out of a run's identity while at the value that
    # reproduces what runs did before the field existed (warmup_from_zero: True was the old behaviour, so a
    # spec at the new default False gets a new run id)
    LATE_DEFAULTS: ClassVar[dict[str, Any]] = {
        "precision": "fp32",
        "gradient_checkpointing": False,
        "deepspeed": None,
        "threads": None,
        "lr_scheduler": "linear",
        "warmup_ratio": 0.05,
        "warmup_steps": None,
        "warmup_from_zero": True,
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "loss_normalisation": "tokens",
        "loss_tokens": "completion",
    }


class ReadoutSpec(Strict):
    """A head on the backbone's hidden state instead of generated text (run kind `readout`).

    `probe`: the backbone frozen, the hidden states of every layer extracted once (cached in the store),
    a ridge (regression) or logistic (labels) head fit on `finetune.train_split`; `layer: auto` and
    `alpha: auto` are chosen on `finetune.valid_split` (5-fold CV on train without one) and recorded.
    Probing finds sentiment most linearly decodable in middle layers (Di Palma et al., ACL 2025,
    arXiv 2505.16491), so the last layer is no fixed default.
    `lora_head`: LoRA + a linear head trained jointly (MSE or L1 on the standardised score, or
    cross-entropy on labels) with the `finetune` block's LoRA settings, as Wen & Tan 2026
    (arXiv 2606.05713: last non-padding token of the final layer); `layer: auto` = the last layer.
    Layers count as transformers' `hidden_states`: 0 = the embeddings, `num_hidden_layers` = the last.
    """

    method: Literal["probe", "lora_head"] = "probe"
    layer: Literal["auto"] | int = Field(
        default="auto", description="hidden_states index; negative counts from the end"
    )
    pool: Literal["last", "mean"] = Field(
        default="last", description="the last non-padding prompt token, or the mean over the prompt's tokens"
    )
    alpha: Literal["auto"] | float = Field(
        default="auto", description="probe: L2 strength (ridge alpha; logistic C = 1/alpha); auto picks from `alphas`"
    )
    alphas: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0, 100.0, 1000.0])
    loss: Literal["mse", "l1"] = Field(default="mse", description="lora_head on regression datasets")
    head_lr: float | None = Field(default=None, description="lora_head: the head's learning rate (None: finetune.lr)")


class ParsePolicySpec(Strict):
    """How answers are read: `rules` (the template's parser) or `extractor` — rules first, then a second
    model maps the answers rules find no label or number in (unread reason `no_label`) to the answer
    space (what AffectGPT/MER-UniBench do for free-form descriptions). Any backend."""

    type: Literal["rules", "extractor"] = "rules"
    model: ModelSpec | None = Field(default=None, description="the extractor model (type: extractor)")
    max_new_tokens: int = 16

    @model_validator(mode="after")
    def _needs_model(self) -> ParsePolicySpec:
        if self.type == "extractor" and self.model is None:
            raise ValueError("parse.type extractor needs parse.model: {backend: ..., name: ...}")
        return self


class RunSpec(Strict):
    kind: Literal["eval", "knowledge", "finetune", "readout"] = "eval"
    dataset: DatasetRef
    split: str = "test"
    model: ModelSpec
    prompt: str = "default"
    knowledge: list[str] = Field(default_factory=list, description="knowledge run ids placed in the prompt")
    knowledge_policy: Literal["keep", "mask", "drop"] = Field(
        default="keep",
        description="mask: blank every answer word and polarity score in the knowledge (see knowledge.mask_labels); "
        "drop: leave out a source's knowledge for samples where it states the gold answer",
    )
    prompt_language: Literal["auto", "en", "zh"] = Field(
        default="auto",
        description="language of the prompt templates: auto = the dataset's language where the template has "
        "that variant (e.g. describe_zh on CH-SIMS), else English",
    )
    generation: GenerationSpec = GenerationSpec()
    media: MediaSpec = MediaSpec()
    finetune: FinetuneSpec | None = None
    readout: ReadoutSpec | None = Field(default=None, description="kind readout: the head and where it reads")
    limit: int | None = None
    seed: int = 0
    parse: ParsePolicySpec = ParsePolicySpec()

    @model_validator(mode="after")
    def _readout_kind(self) -> RunSpec:
        if self.readout is not None and self.kind != "readout":
            raise ValueError(f"`readout:` settings belong to runs of kind readout, not {self.kind}")
        return self

    def identity(self) -> dict[str, Any]:
        """The fields that define the run (what the hash covers)."""
        data = self.model_dump(mode="json")
        data["dataset"].pop("root", None)
        if data["dataset"].get("version") is None:
            data["dataset"].pop("version", None)  # unset: run ids from before the field existed stay valid
        if data.get("prompt_language") == "auto":
            data.pop("prompt_language")  # the default: run ids from before the setting existed stay valid
        data["model"] = self.model.identity()
        if self.parse == ParsePolicySpec():
            data.pop("parse")  # the default policy: run ids stay what they were before the field existed
        media = data["media"]
        if media.get("preset") is None:
            media.pop("preset", None)  # fields added later, at the value that reproduces what came before,
        if media.get("min_frames") == 1:  # leave the hash alone: older run ids stay valid
            media.pop("min_frames", None)
        for key in MediaSpec.BUDGET_FIELDS:
            if media.get(key) is None:
                media.pop(key, None)
        gen = data["generation"]
        if gen.get("mode") != "score" or self.kind != "eval":
            gen.pop("calibration", None)  # only option scoring in eval runs reads it
            gen.pop("decision", None)
        elif gen.get("decision") == "auto":
            gen.pop("decision", None)  # the default: run ids from before the rule was hashed stay valid
        if self.kind == "knowledge":
            # Knowledge is per sample: one knowledge run grows to cover every split and subset
            # that runs referencing it need, and is never generated twice.
            data.pop("split")
            data.pop("limit")
        if data.get("readout") is None:
            data.pop("readout")  # only readout runs have one: older run ids stay valid
        if self.kind == "readout":  # a head reads hidden states: decoding settings change nothing
            data["generation"] = {"system_prompt": gen.get("system_prompt")}
            data.pop("parse", None)
            data["readout"] = data.get("readout") or ReadoutSpec().model_dump(mode="json")
        if data.get("finetune"):
            for key, default in FinetuneSpec.LATE_DEFAULTS.items():
                if data["finetune"].get(key) == default:
                    data["finetune"].pop(key)
        return data

    @property
    def run_id(self) -> str:
        return run_id(self)


class ExecSpec(Strict):
    """Speed-only settings; never part of a run's identity."""

    batch_size: int = 8
    workers: int = 2
    prefetch: int = 4
    prepare_nice: int = Field(
        default=0,
        ge=0,
        le=19,
        description="how many nice steps below the model's threads the prepare (decode) workers run (Linux, per "
        "thread), so that decoding takes only the CPU the model leaves idle. 0 (default): the same priority. "
        "Not a default: on a machine shared with other processes a lowered worker holding the GIL loses its "
        "core to them and the model waits (bench/bench_pipeline.py measured no clear gain on 2 loaded cores)",
    )
    order: Literal["arrival", "length"] = Field(
        default="arrival",
        description="how model batches are formed: arrival (dataset order) or length (samples of similar prompt "
        "length batched together within each window of prefetch x batch_size, less padding; predictions are "
        "still stored in dataset order). Answers equal only where the family is batch-invariant",
    )
    executor: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    actors: int = 1
    gpus_per_actor: float = 0.0
    cpus_per_actor: float = 1.0


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def run_id(spec: RunSpec) -> str:
    digest = hashlib.sha256(canonical_json(spec.identity()).encode()).hexdigest()[:12]
    return f"{spec.kind}-{spec.dataset.name}-{digest}"
