"""Runs of kind `finetune`: LoRA SFT on the prompts that `eval` renders (with or without knowledge).

`run_finetune(store, spec)` builds training pairs with `Prompt.render` + `Prompt.answer`
(`pairs`), trains a peft LoRA adapter (`lora`) on the backend's model (`backends`), logs train
and validation losses to the store, and registers the best epoch's adapter as the run's
artifact "adapter" — an eval run names it by run id (`model.adapter: <finetune run id>`).
`export` writes the same pairs for LLaMA-Factory and ms-swift. Multi-GPU:
`accelerate launch -m affectbench.finetune --experiment E --name N` (or torchrun).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..core.errors import AffectbenchError
from ..core.specs import FinetuneSpec, RunSpec
from ..engine.store import RunRecord, Store

log = logging.getLogger(__name__)

__all__ = ["export_run", "finetune_pairs", "run_finetune"]


def run_kind(runner, spec: RunSpec) -> RunRecord:
    """The `RUN_KINDS` entry of finetune runs: `run_finetune` on the runner's store."""
    return run_finetune(runner.store, spec, progress=runner.progress)


def run_finetune(
    store: Store, spec: RunSpec, *, progress: bool = False, stop_after_steps: int | None = None
) -> RunRecord:
    """Train (or resume, or return the finished) LoRA adapter of a finetune run into `store`.

    `progress` shows a step progress bar on rank 0; `stop_after_steps` is a test hook that
    simulates a kill. Raises AffectbenchError when the split gives no pairs or knowledge is missing."""
    from .lora import rank_world

    if spec.kind != "finetune":
        raise AffectbenchError(f"run {spec.run_id} is a {spec.kind} run, not a finetune run")
    ft = spec.finetune or FinetuneSpec()
    rank, world = rank_world()
    is_main = rank == 0
    rid = spec.run_id
    record = _open_record(store, spec, is_main, world)
    adapter = store.artifact(rid, "adapter")
    if record.status == "done" and adapter is not None and adapter.exists():
        return record
    prompt, train, valid, dataset, knowledge = finetune_pairs(store, spec, with_sources=True)
    if is_main:
        _start_segment(store, spec, ft, prompt, dataset, knowledge)
    try:
        result = _train(store, spec, ft, prompt, train, valid, progress=progress and is_main, stop=stop_after_steps)
    except BaseException as e:
        if is_main:
            store.set_status(rid, "failed" if isinstance(e, Exception) else "interrupted", error=str(e))
        raise
    if is_main:
        _record_result(store, rid, ft, result, train, valid)
    if world > 1:
        _barrier()
    return store.run(rid)


def _open_record(store: Store, spec: RunSpec, is_main: bool, world: int) -> RunRecord:
    """The run's record: rank 0 opens (creates) it in the store; the other ranks read what it wrote."""
    record = store.open_run(spec) if is_main else None
    if world > 1:
        _barrier()
        record = store.run(spec.run_id)
    return record


def _start_segment(store: Store, spec: RunSpec, ft: FinetuneSpec, prompt, dataset, knowledge) -> None:
    """Rank 0: record this segment's provenance (prompt text, model, data and knowledge fingerprints;
    see provenance) and mark the run running. Resuming from a checkpoint needs the same inputs
    (AffectbenchError otherwise)."""
    from ..datasets import select_samples
    from ..engine import provenance
    from ..engine.provenance import check_same_inputs, model_provenance, segment_env  # each segment's

    rid = spec.run_id
    splits = [ft.train_split] + ([ft.valid_split] if ft.valid_split else [])
    read = [s for split in splits for s in select_samples(dataset.load(split), spec.limit, spec.seed)]
    files = sorted({f for split in splits for f in dataset.label_files(split)})
    data = provenance.data_record(read, files, dataset.root)
    ids = data.pop("samples")
    kfp = provenance.knowledge_record(spec.knowledge, knowledge, ids) if spec.knowledge else None
    env = segment_env(spec, prompt, data, kfp)
    env.update(model_provenance(spec.model))
    if store.train_logs(rid, "train"):  # resuming from a checkpoint: same inputs only
        check_same_inputs(store.run(rid), env)
    store.open_run(spec, env=env)
    store.set_status(rid, "running")


def _train(store: Store, spec: RunSpec, ft: FinetuneSpec, prompt, train, valid, *, progress: bool, stop: int | None):
    """Load the trainable model and train its adapter (`lora.train_lora`) into the run's artefact
    folder, logging each loss to the store and advancing the step progress bar; returns the TrainResult."""
    from ..core.progress import progress_bar
    from .backends import trainable_for
    from .lora import steps_per_epoch, train_lora

    rid = spec.run_id
    trainable = trainable_for(spec.model, spec.media, store.workspace, spec.generation)
    total = steps_per_epoch(len(train.pairs), ft) * ft.epochs
    done = len(store.train_logs(rid, "train"))
    with progress_bar(progress, f"{rid}", total, min(done, total), unit="steps") as advance:

        def log_fn(step: int, split: str, loss: float, epoch: float, **meta) -> None:
            store.log_train(rid, step, split, loss, epoch, **meta)
            if split == "train":
                advance(1)

        return train_lora(
            trainable,
            train.pairs,
            valid.pairs if valid else [],
            ft,
            store.workspace / "artifacts" / rid,
            seed=spec.seed,
            log_fn=log_fn,
            stop_after_steps=stop,
            inputs_key=inputs_key(spec, prompt.fingerprint, train, valid, trainable.base),
        )


def _record_result(store: Store, rid: str, ft: FinetuneSpec, result, train, valid) -> None:
    """Rank 0: register the adapter artifact and the training metrics, mark the run done, and warn
    about pairs that lost the start of their prompt to max_length."""
    from .pairs import summary

    store.set_artifact(rid, "adapter", result.adapter)
    store.set_metrics(
        rid,
        {
            "best_epoch": result.best_epoch,
            "best_valid_loss": result.best_valid_loss,
            "first_train_loss": result.first_train_loss,
            "last_train_loss": result.last_train_loss,
            "steps": result.steps,
            "resumed_from_step": result.resumed_from_step,
            "wall_s": result.wall_s,
            "truncated": len(result.truncated),
            "dropped": sum(len(ids) for ids in result.dropped.values()),
            "_dropped": {reason: len(ids) for reason, ids in result.dropped.items()},  # reason → pairs
            "longest_tokens": result.longest_tokens,
            "_recipe": result.recipe,  # the resolved recipe (lora.recipe_record) and ranks (data_parallel_record)
            "_guard": result.guard,  # the first optimizer step's figures (guard.check_adapter_moved)
            "torch_threads": result.threads,
            "_train": summary(train),
            "_valid": summary(valid) if valid else None,
        },
    )
    store.set_status(rid, "done")
    for reason, ids in result.dropped.items():
        log.warning("finetune %s: dropped %d pairs (%s; first: %s)", rid, len(ids), reason, ", ".join(ids[:5]))
    if result.truncated:
        log.warning(
            "finetune %s: %d training/validation pairs were longer than max_length %d and lost the start of "
            "their prompt (first: %s)",
            rid,
            len(result.truncated),
            ft.max_length,
            ", ".join(result.truncated[:5]),
        )


def finetune_pairs(store: Store, spec: RunSpec, *, with_sources: bool = False):
    """(prompt, train PairSet, valid PairSet or None) of a finetune run: its splits rendered with its
    prompt, media, system prompt and stored knowledge; with `with_sources` also the opened dataset and
    the knowledge texts. Raises AffectbenchError when the train split gives no pairs or the run asks
    for knowledge that is not stored."""
    from ..datasets import load_dataset
    from ..engine.gather import knowledge_texts
    from ..prompts import load_prompt
    from .pairs import pairs_for_spec

    ft = spec.finetune or FinetuneSpec()
    rid = spec.run_id
    dataset = load_dataset(spec.dataset.name, spec.dataset.root, **spec.dataset.options)
    knowledge = knowledge_texts(spec, store, dataset.info)
    prompt = load_prompt(spec.prompt, dataset.info, spec.prompt_language)  # the one pairs_for_spec renders with
    train = pairs_for_spec(spec, dataset, ft.train_split, knowledge, ft.train_limit)
    valid = pairs_for_spec(spec, dataset, ft.valid_split, knowledge) if ft.valid_split else None
    if not len(train):
        raise AffectbenchError(
            f"finetune run {rid}: split {ft.train_split!r} of {spec.dataset.name!r} gave no training pairs "
            f"(skipped: {train.skipped}); check the split name and that samples have targets"
        )
    if spec.knowledge:  # every source must reach (nearly) every training prompt: knowledge.MIN_FINETUNE_COVERAGE
        from ..engine.gather import gather_knowledge
        from ..knowledge.assembly import check_coverage

        check_coverage(
            gather_knowledge(spec, store, dataset.info),
            [p.sample.id for p in train.pairs],
            spec.knowledge,
            what=f"finetune run {rid} (split {ft.train_split!r})",
        )
    return (prompt, train, valid, dataset, knowledge) if with_sources else (prompt, train, valid)


def export_run(store: Store, run_id: str, fmt: str, out_dir: Path) -> list[Path]:
    """Write a finetune run's training (and validation) pairs for another trainer: `fmt` "llamafactory"
    (sharegpt JSON + dataset_info.json + llamafactory_args.yaml, template qwen2_omni) or "swift" (ms-swift
    JSONL + swift_args.json), into `out_dir/<run id>/`, in the audio mode the run's eval uses
    (`export.audio_mode`). The pairs are fitted to `finetune.max_length` as training fits them
    (`lora.fit_pairs`, with the run's model processor): pairs that cannot fit are left out, and the
    `cutoff_len` / `max_length` written is the longest exported pair's token count. Returns the data
    files. Raises AffectbenchError for other run kinds or formats."""
    from .backends import trainable_for
    from .export import audio_mode, export_llamafactory, export_swift
    from .lora import fit_pairs

    if fmt not in ("llamafactory", "swift"):
        raise AffectbenchError(f"export: unknown training format {fmt!r}; use llamafactory or swift")
    spec = store.run(run_id).run_spec
    if spec.kind != "finetune":
        raise AffectbenchError(f"export --format {fmt}: run {run_id} is of kind {spec.kind}; give a finetune run")
    ft = spec.finetune or FinetuneSpec()
    _, train, valid = finetune_pairs(store, spec)
    trainable = trainable_for(spec.model, spec.media, store.workspace, spec.generation)
    fitted, dropped, tokens = {}, {}, {}
    for split, ps in (("train", train), ("valid", valid)):
        if ps is not None and len(ps):
            kept, lost, n = fit_pairs(trainable, ps.pairs, ft.max_length)
            fitted[split] = kept
            tokens.update(n)
            for reason, ids in lost.items():
                dropped.setdefault(reason, []).extend(ids)
    # the longest pair as the trainers count it: ours plus the template's trailing newline (their chatml keeps it)
    cutoff = max(tokens.values()) + trainable.tail_tokens if tokens else None
    mode = audio_mode(spec.media)
    system = trainable.system  # the eval's system prompt (run's or the model family's), so training sees it too
    folder = Path(out_dir) / run_id
    out, skipped = [], dict(dropped)
    for split, pairs in fitted.items():
        if fmt == "llamafactory":
            out.append(
                export_llamafactory(
                    pairs, folder, f"{run_id}-{split}", mode=mode, cutoff_len=cutoff, skipped=skipped, system=system
                )
            )
        else:
            out.append(
                export_swift(
                    pairs,
                    folder / f"{run_id}-{split}.jsonl",
                    mode=mode,
                    cutoff_len=cutoff,
                    skipped=skipped,
                    system=system,
                )
            )
    for reason, ids in skipped.items():
        log.warning("export %s: left out %d pairs (%s; first: %s)", run_id, len(ids), reason, ", ".join(ids[:5]))
    return out


def inputs_key(spec: RunSpec, prompt_fingerprint: str, train, valid, base: dict) -> str:
    """sha256 (16 hex) of what a fine-tune's checkpoints come from: the run spec, the base model,
    the prompt's fingerprint, and every training/validation pair (sample id, rendered conversation, answer)."""
    import hashlib

    from ..core.specs import canonical_json

    h = hashlib.sha256(canonical_json({"spec": spec.identity(), "base": base, "prompt": prompt_fingerprint}).encode())
    for name, ps in (("train", train), ("valid", valid)):
        for p in ps.pairs if ps else []:
            h.update(f"{name}\0{p.sample.id}\0{p.conversation!r}\0{p.answer}\0".encode())
    return h.hexdigest()[:16]


def _barrier() -> None:
    from .lora import barrier

    barrier()
