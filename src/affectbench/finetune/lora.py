"""LoRA training on transformers' `Trainer` (+ accelerate): answer-only loss, validation loss per
epoch, best-epoch selection, a checkpoint every N optimizer steps and at each epoch end, resume
after a kill.

One process (CPU or one GPU) or data-parallel under `torchrun` / `accelerate launch`: the
Trainer shards each optimizer step's examples over the ranks (each rank on its own device,
`LOCAL_RANK`), averages gradients, normalises the loss by the answer tokens of the whole global
batch (so N processes train the same adapter as one), and only rank 0 writes files.
`FinetuneSpec.batch_size` is the global batch per micro-step: each of N ranks takes batch_size / N.

Prompts longer than `FinetuneSpec.max_length` tokens lose their start (left truncation), so the
answer always survives; the ids of truncated pairs are reported. A pair whose cut would remove
media placeholder tokens (audio/video frames) or whose answer alone is longer than max_length
cannot fit whole: `fit_pairs` drops it before training with a counted reason (cutting media
tokens would desynchronise the tokens and the media features), and the run goes on.

The recipe is explicit in `FinetuneSpec` and recorded with the run: schedule and warm-up
(`schedule`), weight decay, gradient clipping, loss normalisation (per token or per pair over the
whole optimizer step) and which tokens carry loss. Logged train and validation losses use the same
normalisation (token-weighted means by default, not means of batch means), and best-epoch selection
reads the logged validation loss. `guard.step_guard` fails a run whose first optimizer step leaves
the adapter unchanged or any step with non-finite gradients (the same callback guards the readout's
LoRA + head). `data_parallel_record` records the ranks, the samples per optimizer step and the train
samples accelerate repeats per epoch on several ranks (with a warning).

Mixed precision (`precision: bf16|fp16`), gradient checkpointing and a DeepSpeed config
(`deepspeed: path/to/zero.json`) pass through to `TrainingArguments`. Only CPU runs (one and two
processes, fp32) were run here; bf16/fp16, gradient checkpointing on GPU and DeepSpeed are
passed through untested on GPUs.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import AffectbenchError
from ..core.specs import FinetuneSpec
from .backends import IGNORE, SUFFIX_KEY, TRAINED, Trainable, lm_linear_modules
from .guard import step_guard
from .pairs import Pair
from .schedule import RecipeSchedule, warmup_steps

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 50  # optimizer steps between checkpoints (env AFFECTBENCH_CHECKPOINT_STEPS overrides)
CHECKPOINTS = "checkpoints"  # Trainer output folder under the run's artefact folder
INPUTS_FILE = "inputs.json"  # the key of what produced the checkpoints (see `train_lora(inputs_key=)`)


@dataclass
class TrainResult:
    adapter: Path
    best_epoch: int
    best_valid_loss: float | None
    first_train_loss: float
    last_train_loss: float
    steps: int
    resumed_from_step: int
    wall_s: float
    history: list[dict[str, Any]] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)  # sample ids cut to max_length (left side)
    threads: int = 0  # torch CPU threads used
    dropped: dict[str, list[str]] = field(default_factory=dict)  # reason → sample ids that could not fit whole
    recipe: dict[str, Any] = field(default_factory=dict)  # the resolved optimisation recipe (see `recipe_record`)
    guard: dict[str, Any] | None = None  # the first optimizer step's figures (`guard.check_adapter_moved`)
    longest_tokens: int = 0  # tokens of the longest kept pair after truncation (fits max_length)


class Interrupt(Exception):
    """Raised by the test hook `stop_after_steps` to simulate a kill."""


def rank_world() -> tuple[int, int]:
    """(global rank, world size) from the launcher's environment (torchrun / accelerate); (0, 1) alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def barrier() -> None:
    """Wait for every rank of the launcher's process group (joined through accelerate's `PartialState`
    when not yet: gloo on CPU, nccl on GPUs)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        from accelerate import PartialState

        PartialState()
    dist.barrier()


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def deterministic(threads: int | None) -> int:
    """Deterministic kernels (warn where an op has none) and, when given, a fixed torch CPU thread count;
    returns the thread count in force. On GPUs also cuDNN determinism and cuBLAS's fixed workspace."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    if threads:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


def steps_per_epoch(n_pairs: int, ft: FinetuneSpec) -> int:
    """Optimizer steps in one epoch over `n_pairs` (global batch = batch_size × grad_accum)."""
    return max(1, math.ceil(n_pairs / (ft.batch_size * ft.grad_accum)))


def answer_loss_rows(model: Any, inputs: dict[str, Any]):
    """(summed cross-entropy over each row's loss tokens (batch,), their count per row (batch,), long),
    computing logits only where labels are.

    Labels sit at the end of left-padded rows, so the vocabulary projection (the largest matmul
    of a small LLM with a big vocabulary) runs for a handful of positions instead of the prompt.
    Targets are shifted as in transformers' ForCausalLMLoss (position i predicts label i+1).
    """
    import torch.nn.functional as F

    labels = inputs["labels"]
    width = labels.shape[1]
    cols = (labels != IGNORE).any(0).nonzero()
    kwargs = {k: v for k, v in inputs.items() if k != "labels"}
    if len(cols) == 0:
        logits = model(**kwargs).logits
        zero = logits.float().sum() * 0.0
        return zero.expand(labels.shape[0]).clone(), labels.new_zeros(labels.shape[0])
    keep = width - int(cols.min()) + 1
    logits = model(**kwargs, logits_to_keep=keep).logits[:, -keep:]  # a model may ignore logits_to_keep
    target = labels[:, width - keep + 1 :]
    per_token = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=IGNORE, reduction="none"
    ).view(target.shape)
    return per_token.sum(1), (target != IGNORE).sum(1)


def answer_loss_sum(model: Any, inputs: dict[str, Any]):
    """(summed cross-entropy over the answer tokens, their count), computing logits only where labels are."""
    sums, counts = answer_loss_rows(model, inputs)
    return sums.sum(), int(counts.sum())


def reduce_loss(sums, counts, normalisation: str = "tokens") -> float:
    """The loss of rows with summed cross-entropies `sums` over `counts` loss tokens: "tokens" =
    sum(sums) / sum(counts) (token-weighted mean), "sequences" = the mean of sums / counts over the
    rows that have loss tokens. Plain numbers (arrays, lists or tensors) in, a float out."""
    pairs = [(float(s), int(c)) for s, c in zip(sums, counts, strict=True) if int(c) > 0]
    if not pairs:
        return math.nan
    if normalisation == "sequences":
        return sum(s / c for s, c in pairs) / len(pairs)
    return sum(s for s, _ in pairs) / sum(c for _, c in pairs)


def answer_loss(model: Any, inputs: dict[str, Any]):
    """Mean cross-entropy over the answer tokens; equal to the model's own `labels=` loss."""
    total, n = answer_loss_sum(model, inputs)
    return total / max(n, 1)


def truncate_left(inputs: dict[str, Any], max_length: int, media_ids: set[int], ids: list[str]) -> list[str]:
    """Cut left-padded rows to their last `max_length` tokens, in place; returns the ids of cut rows.

    Every (batch, width) tensor (input_ids, attention_mask, labels, …) keeps its last columns.
    Raises AffectbenchError naming the sample when a cut would remove media placeholder tokens
    or the whole answer would not fit.
    """
    input_ids = inputs["input_ids"]
    width = input_ids.shape[1]
    if width <= max_length:
        return []
    lengths = inputs["attention_mask"].sum(1).tolist()
    cut: list[str] = []
    for row, (sid, n) in enumerate(zip(ids, lengths, strict=True)):
        if n <= max_length:
            continue
        dropped = input_ids[row, width - n : width - max_length].tolist()
        if media_ids & set(dropped):
            raise AffectbenchError(
                f"finetune: sample {sid} has {n} tokens > finetune.max_length {max_length} and cutting its start "
                "would remove audio/video tokens; raise finetune.max_length or lower the media budget "
                "(media.max_frames, media.max_pixels)"
            )
        if int((inputs["labels"][row, width - max_length + 1 :] != IGNORE).sum()) < int(
            (inputs["labels"][row] != IGNORE).sum()
        ):
            raise AffectbenchError(f"finetune: the answer of sample {sid} alone is longer than finetune.max_length")
        cut.append(sid)
    for key, value in list(inputs.items()):
        if hasattr(value, "shape") and value.dim() >= 2 and value.shape[:2] == (input_ids.shape[0], width):
            inputs[key] = value[:, width - max_length :]
    return cut


def answer_only_labels(inputs: dict[str, Any]) -> None:
    """Drop the end-of-turn tokens after the answer from the labels, in place (`loss_tokens: answer`).

    Needs the encoder's `loss_suffix_tokens` (per row: labelled tokens after the answer); raises
    AffectbenchError when the backend's encoder does not give it."""
    suffix = inputs.pop(SUFFIX_KEY, None)
    if suffix is None:
        raise AffectbenchError(
            "finetune.loss_tokens answer: this backend's encoder does not say which labelled tokens follow the "
            "answer; use loss_tokens: completion"
        )
    labels = inputs["labels"]
    width = labels.shape[1]
    for row, k in enumerate(suffix):
        if k:
            labels[row, width - int(k) :] = IGNORE


class PairCollator:
    """Trainer data collator: prepares (decodes media of) the pairs as eval does, encodes them with
    answer-only labels (`loss_tokens`: with or without the end-of-turn tokens) and truncates them to
    max_length from the left."""

    def __init__(self, trainable: Trainable, max_length: int, loss_tokens: str = "completion") -> None:
        self.trainable, self.max_length, self.loss_tokens = trainable, max_length, loss_tokens
        self.truncated: set[str] = set()

    def __call__(self, pairs: list[Pair]) -> dict[str, Any]:
        t = self.trainable
        batch = [t.prepare(p.conversation) for p in pairs]
        inputs = dict(t.encode(batch, [p.answer for p in pairs]))
        if self.loss_tokens == "answer":
            answer_only_labels(inputs)
        inputs.pop(SUFFIX_KEY, None)
        ids = [p.sample.id for p in pairs]
        self.truncated.update(truncate_left(inputs, self.max_length, t.media_ids, ids))
        return inputs


DROP_MEDIA = "prompt longer than max_length with audio/video tokens in the part left truncation would cut"
DROP_ANSWER = "answer alone longer than max_length"


def fit_reason(input_ids: list[int], n_labels: int, max_length: int, media_ids: set[int]) -> str | None:
    """Why a pair of token ids `input_ids` (no padding) with `n_labels` labelled tail tokens cannot be
    fitted whole into `max_length` by left truncation (DROP_MEDIA / DROP_ANSWER), or None when it can."""
    n = len(input_ids)
    if n <= max_length:
        return None
    if n_labels > max_length - 1:  # the first kept token is context only (shifted targets)
        return DROP_ANSWER
    if media_ids & set(input_ids[: n - max_length]):
        return DROP_MEDIA
    return None


def fit_pairs(
    trainable: Trainable, pairs: list[Pair], max_length: int
) -> tuple[list[Pair], dict[str, list[str]], dict[str, int]]:
    """(pairs that fit max_length whole after left truncation, {reason: dropped sample ids}, {kept sample id:
    its tokens before truncation}). Each pair is encoded alone as training encodes it (media decoded), so the
    decision is the one the collator would meet; a dropped pair costs that pair, never the run."""
    kept: list[Pair] = []
    dropped: dict[str, list[str]] = {}
    tokens: dict[str, int] = {}
    for p in pairs:
        inputs = trainable.encode([trainable.prepare(p.conversation)], [p.answer])
        mask = inputs["attention_mask"][0].bool()
        ids = inputs["input_ids"][0][mask].tolist()
        n_labels = int((inputs["labels"][0] != IGNORE).sum())
        reason = fit_reason(ids, n_labels, max_length, trainable.media_ids)
        if reason is None:
            kept.append(p)
            tokens[p.sample.id] = len(ids)
        else:
            dropped.setdefault(reason, []).append(p.sample.id)
            log.warning("finetune: dropping sample %s (%d tokens): %s", p.sample.id, len(ids), reason)
    return kept, dropped, tokens


def _trainer_class(ft: FinetuneSpec | None = None):
    import torch
    from transformers import Trainer

    class AnswerLossTrainer(RecipeSchedule, Trainer):
        """Trainer whose loss is the answer-only cross-entropy, normalised over the whole optimizer step
        (all micro-batches and ranks: by its loss tokens, or by its pairs with `loss_normalisation:
        sequences`), so batch size, accumulation and data parallelism do not change the update; the
        schedule of `schedule.lr_scheduler`; a validation loss normalised the same way (not the
        Trainer's mean of per-batch means)."""

        loss_is_scaled_for_ga = True
        recipe = ft or FinetuneSpec()

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.model_accepts_loss_kwargs = True  # makes the Trainer count num_items_in_batch for us

        def get_batch_samples(self, epoch_iterator, num_batches, device):
            batch_samples, n_items = super().get_batch_samples(epoch_iterator, num_batches, device)
            if self.recipe.loss_normalisation == "sequences" and batch_samples and n_items is not None:
                n = sum(int((b["labels"][..., 1:] != IGNORE).any(-1).sum()) for b in batch_samples)
                n_items = torch.tensor(n, device=device)
                if self.args.world_size > 1:
                    n_items = self.accelerator.gather(n_items).sum()
            return batch_samples, n_items

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            sums, counts = answer_loss_rows(model, inputs)
            if self.recipe.loss_normalisation == "sequences":
                numer = (sums / counts.clamp(min=1))[counts > 0].sum()
                local = int((counts > 0).sum())
            else:
                numer, local = sums.sum(), int(counts.sum())
            if num_items_in_batch is None or not model.training:
                loss = numer / max(local, 1)
            else:
                loss = numer / (
                    num_items_in_batch.clamp(min=1)
                    if torch.is_tensor(num_items_in_batch)
                    else max(num_items_in_batch, 1)
                )
                if self.args.average_tokens_across_devices:  # DDP averages the ranks' gradients
                    loss = loss * self.accelerator.num_processes
            return (loss, None) if return_outputs else loss

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            """(mean loss of the batch, per-row [summed loss, loss tokens] (batch, 2), None)."""
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                sums, counts = answer_loss_rows(model, inputs)
            loss = sums.sum() / counts.sum().clamp(min=1)
            return loss.detach(), torch.stack([sums.detach(), counts.to(sums.dtype)], 1), None

        def evaluation_loop(
            self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
        ):
            """The Trainer's loop (per-row sums gathered over ranks, duplicates dropped), with `<prefix>_loss`
            normalised as training is (token-weighted by default) instead of a mean of batch means."""
            out = super().evaluation_loop(dataloader, description, False, ignore_keys, metric_key_prefix)
            stats = out.predictions
            if stats is not None and len(stats):
                out.metrics[f"{metric_key_prefix}_loss"] = reduce_loss(
                    stats[:, 0], stats[:, 1], self.recipe.loss_normalisation
                )
            return out._replace(predictions=None)

    return AnswerLossTrainer


def _callback(out_dir: Path, log_fn, stop_after_steps: int | None, resumed: list[int]):
    from transformers import TrainerCallback

    class Bookkeeping(TrainerCallback):
        """Logs losses, keeps the best epoch's adapter (`best/`), saves at each epoch end, test kill hook."""

        def on_train_begin(self, args, state, control, **kw):
            resumed[0] = state.global_step

        def on_epoch_end(self, args, state, control, **kw):
            control.should_save = True

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" in logs and log_fn and state.is_world_process_zero:
                log_fn(
                    state.global_step,
                    "train",
                    float(logs["loss"]),
                    float(state.epoch or 0),
                    lr=logs.get("learning_rate"),
                )
            if stop_after_steps is not None and "loss" in logs and state.global_step - resumed[0] >= stop_after_steps:
                if state.global_step < state.max_steps:
                    raise Interrupt(f"stopped after {state.global_step} steps (test hook)")

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kw):
            loss = float(metrics["eval_loss"])
            epoch = round(float(state.epoch or 0))
            if log_fn and state.is_world_process_zero:
                log_fn(state.global_step, "valid", loss, float(epoch))
            # the Trainer logs this evaluation before calling us: compare with the ones before it
            earlier = [h["eval_loss"] for h in state.log_history if "eval_loss" in h][:-1]
            if state.is_world_process_zero and all(loss < e for e in earlier):
                _save_adapter(model, out_dir / "best", {"epoch": epoch, "valid_loss": loss})

    return Bookkeeping()


def _save_adapter(model, path: Path, meta: dict[str, Any] | None = None) -> Path:
    """Write a peft adapter to a temp folder, then swap it in (never a half-written adapter)."""
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    if meta is not None:
        (tmp / "epoch.json").write_text(json.dumps(meta))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


FULL_CLASS_DIR = "full"  # inside an adapter trained on a full Omni checkpoint's thinker


def full_class_adapter(src: Path, prefix: str, dst: Path) -> Path:
    """Write a copy of the peft adapter `src` (trained on the thinker of a full Qwen2.5-/Qwen3-Omni
    checkpoint, keys relative to the thinker) that loads onto the full Omni class: every weight key and
    target module gets `prefix` ("thinker."), so peft finds all of them (without it peft only warns
    "missing adapter keys" and the model equals the base). Returns `dst`."""
    from safetensors.torch import load_file, save_file

    head = "base_model.model."
    weights = load_file(str(src / "adapter_model.safetensors"))
    renamed = {}
    for key, value in weights.items():
        if not key.startswith(head):
            raise AffectbenchError(f"{src}: unexpected adapter key {key!r} (peft keys start with {head!r})")
        renamed[head + prefix + key[len(head) :]] = value
    config = json.loads((src / "adapter_config.json").read_text())
    targets = config.get("target_modules")
    if isinstance(targets, list):
        config["target_modules"] = sorted(prefix + t for t in targets)
    elif isinstance(targets, str):  # a regex over full module names
        config["target_modules"] = f"{re.escape(prefix)}(?:{targets})"
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(renamed, str(tmp / "adapter_model.safetensors"), metadata={"format": "pt"})
    (tmp / "adapter_config.json").write_text(json.dumps(config, indent=2))
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return dst


def training_arguments(
    ft: FinetuneSpec, out_dir: Path, *, seed: int, checkpoint_every: int, has_valid: bool, world: int, n_train: int
):
    """The `TrainingArguments` of a FinetuneSpec (AdamW with its weight_decay, grad-norm clip at its
    max_grad_norm; the schedule comes from `schedule.lr_scheduler`, the warm-up length given here is the
    one it uses); raises AffectbenchError when batch_size does not split over the ranks or a GPU-only
    option is asked for on CPU."""
    import torch
    from transformers import TrainingArguments

    if ft.batch_size % world:
        raise AffectbenchError(
            f"finetune.batch_size {ft.batch_size} does not split over {world} processes; use a multiple of {world}"
        )
    cuda = torch.cuda.is_available()
    if ft.precision != "fp32" and not cuda:
        raise AffectbenchError(f"finetune.precision {ft.precision} needs a GPU here; use fp32 on CPU")
    kwargs: dict[str, Any] = dict(
        output_dir=str(out_dir / CHECKPOINTS),
        per_device_train_batch_size=ft.batch_size // world,
        per_device_eval_batch_size=max(1, ft.batch_size // world),
        gradient_accumulation_steps=ft.grad_accum,
        num_train_epochs=ft.epochs,
        learning_rate=ft.lr,
        weight_decay=ft.weight_decay,
        max_grad_norm=ft.max_grad_norm or 0.0,
        lr_scheduler_type="constant" if ft.lr_scheduler == "constant" else ft.lr_scheduler,
        warmup_steps=warmup_steps(ft, steps_per_epoch(n_train, ft) * ft.epochs),
        optim="adamw_torch",
        logging_strategy="steps",
        logging_steps=1,
        eval_strategy="epoch" if has_valid else "no",
        save_strategy="steps",
        save_steps=max(1, checkpoint_every),
        save_total_limit=1,
        seed=seed,
        data_seed=seed,
        report_to="none",
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        bf16=ft.precision == "bf16",
        fp16=ft.precision == "fp16",
        activation_checkpointing=ft.gradient_checkpointing,
        average_tokens_across_devices=True,
        use_cpu=not cuda,
        ddp_backend=None if cuda else ("gloo" if world > 1 else None),
        ddp_find_unused_parameters=ft.train_towers,  # tower LoRA layers get no gradient from text-only batches
    )
    if ft.deepspeed:
        if not Path(ft.deepspeed).is_file():
            raise AffectbenchError(f"finetune.deepspeed: config file not found: {ft.deepspeed}")
        kwargs["deepspeed"] = ft.deepspeed
    return TrainingArguments(**kwargs)


def check_inputs_key(out_dir: Path, key: str | None) -> None:
    """Refuse to resume checkpoints made from other inputs (pairs, prompt, spec, base model)."""
    if key is None:
        return
    ckpts = out_dir / CHECKPOINTS
    stored = out_dir / INPUTS_FILE
    if ckpts.is_dir() and any(ckpts.iterdir()):
        before = json.loads(stored.read_text()).get("key") if stored.is_file() else None
        if before != key:
            raise AffectbenchError(
                f"the checkpoints in {ckpts} were made from other inputs (training pairs, prompt, settings or "
                f"base model: {before} → {key}); refusing to resume them. Delete the run (affectbench rm RUN) "
                "and rerun to train afresh"
            )


def checkpoint_steps(every: int | None) -> int:
    """Optimizer steps between checkpoints: `every` when given, else env AFFECTBENCH_CHECKPOINT_STEPS,
    else CHECKPOINT_EVERY."""
    if every is None:
        every = int(os.environ.get("AFFECTBENCH_CHECKPOINT_STEPS", CHECKPOINT_EVERY))
    return every


def write_inputs_key(out_dir: Path, key: str) -> None:
    """Record `key` (see `check_inputs_key`) as what the checkpoints in `out_dir` come from."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / INPUTS_FILE).write_text(json.dumps({"key": key}))


def last_checkpoint(out_dir: Path) -> str | None:
    """The Trainer checkpoint to resume from (the newest under `out_dir/checkpoints`), or None."""
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(out_dir / CHECKPOINTS)) if (out_dir / CHECKPOINTS).is_dir() else None
    if last:
        log.info("finetune: resuming from %s", last)
    return last


def peft_model(base: Any, ft: FinetuneSpec):
    """`base` wrapped by peft with the LoRA adapter of `ft` (rank, alpha, dropout, target modules;
    "all-linear" = the language model's linear layers, plus the towers' with `train_towers`)."""
    from peft import LoraConfig, get_peft_model

    if isinstance(ft.target_modules, str) and ft.target_modules == "all-linear":
        targets: list[str] | str = lm_linear_modules(base, ft.train_towers)
    else:
        targets = ft.target_modules
    config = LoraConfig(
        r=ft.rank, lora_alpha=ft.alpha, lora_dropout=ft.dropout, target_modules=targets, task_type="CAUSAL_LM"
    )
    if ft.gradient_checkpointing and hasattr(base, "enable_input_require_grads"):
        base.enable_input_require_grads()  # frozen embeddings: checkpointed blocks still need an input with grad
    model = get_peft_model(base, config, adapter_name=TRAINED)
    if len(model.peft_config) > 1:
        # `base` held adapters already (a checkpoint's card adapters, frozen; backends.hf_trainable): peft shares
        # their configs with the new model through __getattr__, and PeftModel.save_pretrained saves every adapter
        # in peft_config unless told which. Every save (ours, the Trainer's checkpoints) writes the trained one
        # alone, at the folder's root, loadable by PeftModel.from_pretrained on base + card adapters.
        model.save_pretrained = functools.partial(type(model).save_pretrained, model, selected_adapters=[TRAINED])
    return model


def loss_history(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Trainer's log as {step, split ("train" | "valid"), loss, epoch} rows, in logging order."""
    return [
        {"step": h["step"], "split": "train", "loss": h["loss"], "epoch": h.get("epoch")}
        if "loss" in h
        else {"step": h["step"], "split": "valid", "loss": h["eval_loss"], "epoch": round(h.get("epoch", 0))}
        for h in log_history
        if "loss" in h or "eval_loss" in h
    ]


def gather_truncated(truncated: set[str], world: int) -> list[str]:
    """The sorted sample ids cut to max_length on any rank (each rank saw its own shard)."""
    ids = sorted(truncated)
    if world <= 1:
        return ids
    import torch.distributed as dist

    parts: list[list[str]] = [[] for _ in range(world)]
    dist.all_gather_object(parts, ids)
    return sorted({sid for part in parts for sid in part})


def _run_adapter(
    model, trainable: Trainable, ft: FinetuneSpec, out_dir: Path, best, validated: bool, is_main: bool, stats: dict
) -> tuple[Path, int]:
    """(adapter folder, best epoch) of a finished training: `best/` and the best validation epoch, or
    `final/` and the last epoch when no validation split chose one. Rank 0 also saves `final/`, writes
    the adapter's card (`affectbench_finetune.json`: base, spec, best epoch, `stats`) and, for a full
    Omni checkpoint's thinker, its full-class copy; other ranks only name the folder."""
    adapter, best_epoch = out_dir / "best", int(best["epoch"]) if best else ft.epochs
    if not is_main:
        return adapter, best_epoch
    final = _save_adapter(model, out_dir / "final")
    if not validated or not adapter.exists():
        adapter, best_epoch = final, ft.epochs
    card = {"base": trainable.base, "finetune": ft.model_dump(mode="json"), "best_epoch": best_epoch, **stats}
    (adapter / "affectbench_finetune.json").write_text(json.dumps(card, indent=2))
    if trainable.base.get("thinker_prefix"):
        full_class_adapter(adapter, trainable.base["thinker_prefix"], adapter / FULL_CLASS_DIR)
    return adapter, best_epoch


def _train_restoring(trainer, resume: str | None, before: tuple[int, bool]) -> None:
    """`trainer.train(resume_from_checkpoint=resume)`, then torch's CPU thread count and deterministic-
    algorithms flag back to `before`, even on failure (an eval in the same process keeps its own settings)."""
    import torch

    try:
        trainer.train(resume_from_checkpoint=resume)
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])


def _trainer(model, args, train: list[Pair], valid: list[Pair], collator: PairCollator, callbacks, ft=None):
    """The answer-loss Trainer of a run (recipe `ft`), printing nothing (losses go to the store through
    the callbacks)."""
    from transformers.trainer_callback import PrinterCallback

    trainer = _trainer_class(ft)(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=valid or None,
        data_collator=collator,
        callbacks=list(callbacks),
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def data_parallel_record(n_train: int, ft: FinetuneSpec, world: int, *, rank: int = 0, run: str = "") -> dict[str, int]:
    """{"world" (processes training), "samples_per_step" (train samples per optimizer step, global:
    batch_size × grad_accum), "repeated_per_epoch"} of a run on `n_train` train samples; on rank 0 logs
    a warning when `repeated_per_epoch` > 0 (`run` names the run in it).

    On several ranks accelerate's `prepare_data_loader` (`even_batches=True`, the Trainer's default)
    shards each micro-step's global batch of `batch_size` samples over the ranks and, when `n_train` is
    not a multiple of `batch_size`, fills the epoch's last global batch with samples from the epoch's
    start (`BatchSamplerShard`): `(-n_train) % batch_size` samples train twice each epoch and that
    step differs from one process's. One process keeps the short last batch: 0."""
    repeated = (-n_train) % ft.batch_size if world > 1 else 0
    if repeated and rank == 0:
        log.warning(
            "%s: %d train samples do not fill the last global batch of %d on %d ranks; %d samples are repeated "
            "in it each epoch by accelerate's even batches (use a train size divisible by finetune.batch_size "
            "for one process's update)",
            run or "finetune", n_train, ft.batch_size, world, repeated,
        )  # fmt: skip
    return {"world": world, "samples_per_step": ft.batch_size * ft.grad_accum, "repeated_per_epoch": repeated}


def recipe_record(ft: FinetuneSpec, n_train: int) -> dict[str, Any]:
    """The optimisation recipe a run trains with, resolved for `n_train` pairs: optimizer, schedule,
    warm-up steps and the learning rate of the first optimizer step, weight decay, clipping, loss
    normalisation and loss tokens, global batch (pairs per optimizer step) and total steps."""
    from .schedule import lr_factor

    total = steps_per_epoch(n_train, ft) * ft.epochs
    return {
        "optimizer": "adamw_torch",
        "lr": ft.lr,
        "lr_scheduler": ft.lr_scheduler,
        "warmup_steps": warmup_steps(ft, total),
        "warmup_from_zero": ft.warmup_from_zero,
        "first_step_lr": ft.lr * lr_factor(ft, 0, total),
        "weight_decay": ft.weight_decay,
        "max_grad_norm": ft.max_grad_norm,
        "loss_normalisation": ft.loss_normalisation,
        "loss_tokens": ft.loss_tokens,
        "pairs_per_step": ft.batch_size * ft.grad_accum,
        "total_steps": total,
    }


def train_lora(
    trainable: Trainable,
    train: list[Pair],
    valid: list[Pair],
    ft: FinetuneSpec,
    out_dir: Path,
    *,
    seed: int = 0,
    log_fn: Callable[..., None] | None = None,
    checkpoint_every: int | None = None,
    stop_after_steps: int | None = None,
    inputs_key: str | None = None,
) -> TrainResult:
    """Train a LoRA adapter on `train`, select the epoch with the lowest validation loss.

    `out_dir` holds `checkpoints/` (Trainer resume state), `best/` and `final/`; the returned
    adapter is `best/` when there is a validation split, else `final/`. `log_fn(step, split, loss,
    epoch, **meta)` receives train losses per optimizer step and the validation loss per epoch
    (rank 0 only). `inputs_key` identifies what produced the checkpoints; a resume whose key
    differs is refused (AffectbenchError). Pairs that cannot fit max_length whole are dropped first
    (`fit_pairs`; `TrainResult.dropped`).
    """
    import torch

    t0 = time.perf_counter()
    every = checkpoint_steps(checkpoint_every)
    rank, world = rank_world()
    check_inputs_key(out_dir, inputs_key)
    train, dropped, tokens = fit_pairs(trainable, train, ft.max_length)
    valid, dropped_valid, tokens_valid = fit_pairs(trainable, valid, ft.max_length)
    for reason, ids in dropped_valid.items():
        dropped.setdefault(reason, []).extend(ids)
    if not train:
        raise AffectbenchError(
            f"finetune: no training pair fits finetune.max_length {ft.max_length} whole "
            f"({', '.join(f'{len(v)} {k}' for k, v in dropped.items())}); raise max_length or lower the media budget"
        )
    args = training_arguments(
        ft, out_dir, seed=seed, checkpoint_every=every, has_valid=bool(valid), world=world, n_train=len(train)
    )
    parallel = data_parallel_record(len(train), ft, world, rank=rank, run=f"finetune {out_dir.name}")
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    threads = deterministic(ft.threads)
    seed_everything(seed)
    model = peft_model(trainable.module, ft)
    collator = PairCollator(trainable, ft.max_length, ft.loss_tokens)
    resumed = [0]
    callback = _callback(out_dir, log_fn, stop_after_steps, resumed)
    guard = step_guard()
    trainer = _trainer(model, args, train, valid, collator, [callback, guard], ft)
    if rank == 0 and inputs_key is not None:
        write_inputs_key(out_dir, inputs_key)
    _train_restoring(trainer, last_checkpoint(out_dir), before)
    history = loss_history(trainer.state.log_history)
    train_losses = [h["loss"] for h in history if h["split"] == "train"]
    best = min((h for h in history if h["split"] == "valid"), key=lambda h: h["loss"], default=None)
    truncated = gather_truncated(collator.truncated, world)
    stats = {"best_valid_loss": best["loss"] if best else None, "steps": trainer.state.global_step}
    stats["truncated"] = len(truncated)
    stats["dropped"] = {k: len(v) for k, v in dropped.items()}
    stats["recipe"] = {**recipe_record(ft, len(train)), **parallel}
    adapter, best_epoch = _run_adapter(model, trainable, ft, out_dir, best, bool(valid), rank == 0, stats)
    if world > 1:
        trainer.accelerator.wait_for_everyone()
    return TrainResult(
        adapter=adapter,
        best_epoch=best_epoch,
        best_valid_loss=stats["best_valid_loss"],
        first_train_loss=train_losses[0] if train_losses else math.nan,
        last_train_loss=train_losses[-1] if train_losses else math.nan,
        steps=trainer.state.global_step,
        resumed_from_step=resumed[0],
        wall_s=round(time.perf_counter() - t0, 2),
        history=history,
        truncated=truncated,
        threads=threads,
        dropped=dropped,
        recipe=stats["recipe"],
        guard=guard.figures,
        longest_tokens=min(ft.max_length, max([*tokens.values(), *tokens_valid.values()], default=0)),
    )
