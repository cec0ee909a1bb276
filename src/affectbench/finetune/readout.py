"""Runs of kind `readout`: a head on a hidden state of the backbone instead of generated text.

Two methods (`ReadoutSpec.method`), both reading the hidden state of one layer (transformers'
`hidden_states[layer]`: 0 = embeddings) at the last non-padding prompt token or pooled over the
prompt (`pool: last | mean`), of the exact prompt that `eval` renders (knowledge included):

- `probe` — the backbone frozen; the features of every layer are extracted once per sample and
  cached in the store (`Store.put_features`, keyed by model, media and pooling, each row by the
  digest of its rendered input: a rerun or another probe on the same inputs reuses them); a ridge
  (regression) or logistic (labels) head from scikit-learn, on standardised features, is fit on
  the train split; the layer and the L2 strength are chosen on the valid split (5-fold CV on train
  without one) and recorded. Di Palma et al. (ACL 2025, arXiv 2505.16491) find sentiment most
  linearly decodable in middle layers, hence `layer: auto`.
- `lora_head` — LoRA (the `finetune` block's settings) and a linear head trained together through
  transformers' `Trainer` (`lora.training_arguments`: same schedule, checkpoints, resume and
  determinism as generative SFT), MSE or L1 on the standardised score or cross-entropy on labels,
  as Wen & Tan 2026 (arXiv 2606.05713: last non-padding token of the final layer, regression head).
  The head rides in the peft adapter as a `modules_to_save` module, so the adapter folder holds both.
  The loss is summed over the samples of the whole optimizer step and divided by their count (all
  micro-batches and ranks), so (batch 4, accumulation 1), (1, 4) and 2 ranks x (2, 1) give one update;
  logged train and validation losses are these sample-weighted means. Several ranks:
  `torchrun --nproc_per_node N -m affectbench.finetune --experiment E --name ENTRY` (or `accelerate launch
  --multi_gpu --num_processes N -m …`; `--workspace W --run-id R` for a stored run): DDP, `finetune.batch_size`
  is the global batch, rank 0 alone writes the record, adapter and predictions (the test split is predicted
  on rank 0), and `_readout.world` records the ranks. When the train size is not a multiple of
  `batch_size`, accelerate fills each epoch's last global batch with repeated samples (warned, recorded as
  `_readout.repeated_per_epoch`; `lora.data_parallel_record`, shared with generative SFT). The guard of
  generative SFT (`guard.step_guard`) fails a run whose first optimizer step leaves LoRA and head
  unchanged, or any step with non-finite gradients; `_readout.guard` records the first step's figures.
  `probe` runs in one process only; launched on several ranks it is refused.

Predictions are values (a float, unrounded and unclipped, or a label) stored per sample and scored
by the dataset's own metric suite (`engine.scoring.score_run` without re-parsing).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import AffectbenchError, require
from ..core.specs import FinetuneSpec, ReadoutSpec, RunSpec, canonical_json
from ..core.types import DatasetInfo, Sample, TaskType
from ..engine.store import Prediction, RunRecord, Store
from ..models.base import Conversation
from .schedule import RecipeSchedule

log = logging.getLogger(__name__)

HEAD = "readout_head"  # the head's module name inside the peft model (a `modules_to_save` module)
CARD = "readout.json"  # the head's card in the adapter folder: layer, pool, labels, target scaling
FEATURE_DTYPE = "float32"
CV_FOLDS = 5


@dataclass
class Item:
    """One rendered sample of a readout run: the conversation eval would send and its input digest."""

    sample: Sample
    conversation: Conversation
    digest: str  # sha256 (16 hex) of the rendered conversation and the sample's content


@dataclass
class Split:
    name: str
    items: list[Item]
    failed: dict[str, str] = field(default_factory=dict)  # sample id → why it could not be rendered
    skipped: int = 0  # train/valid samples without a usable target


def run_kind(runner, spec: RunSpec) -> RunRecord:
    """The `RUN_KINDS` entry of readout runs."""
    return run_readout(runner.store, spec, batch_size=runner.exec.batch_size, progress=runner.progress)


def run_readout(store: Store, spec: RunSpec, *, batch_size: int = 8, progress: bool = False) -> RunRecord:
    """Fit (or resume, or return the finished) readout run `spec` and score its predictions on `spec.split`.

    Under torchrun / accelerate launch (WORLD_SIZE > 1) only `lora_head` runs: every rank trains its
    shard (DDP); rank 0 alone writes the record, the adapter and the predictions, and the other ranks
    wait for it and return what it wrote. Raises AffectbenchError when the train split gives no usable
    samples, a fixed layer does not exist, the backend cannot give prompt inputs
    (`Trainable.encode_prompt`), or a `probe` is launched on several ranks."""
    from .lora import barrier, rank_world

    if spec.kind != "readout":
        raise AffectbenchError(f"run {spec.run_id} is a {spec.kind} run, not a readout run")
    ro = spec.readout or ReadoutSpec()
    rid = spec.run_id
    rank, world = rank_world()
    if world > 1 and ro.method != "lora_head":
        raise AffectbenchError(
            f"readout run {rid}: method {ro.method} runs in one process (frozen backbone, features extracted once, "
            f"a scikit-learn fit), not on {world} ranks; run it without torchrun / accelerate launch "
            "(`affectbench run` or `python -m affectbench.finetune`). Only method lora_head trains on several ranks"
        )
    is_main = rank == 0
    record = store.open_run(spec) if is_main else None
    if world > 1:
        barrier()  # the other ranks read the record rank 0 opened
        record = store.run(rid)
    if record.status == "done":
        return record
    inputs = readout_inputs(store, spec)
    if is_main:
        env = _segment(store, spec, inputs)
        if store.count_predictions(rid):
            from ..engine.provenance import check_same_inputs

            check_same_inputs(store.run(rid), env)
        store.open_run(spec, env=env)
        store.set_status(rid, "running")
    try:
        from .backends import trainable_for

        # readout features come from the bare base (a checkpoint's card adapters are not stacked under a head)
        trainable = trainable_for(spec.model, spec.media, store.workspace, spec.generation, card_adapters=False)
        if trainable.encode_prompt is None:
            raise AffectbenchError(f"backend {spec.model.backend!r} gives no prompt inputs; readout runs need hf")
        if ro.method == "probe":
            summary = _probe(store, spec, ro, trainable, inputs, batch_size, progress)
        else:
            summary = _lora_head(store, spec, ro, trainable, inputs, batch_size, progress)
        if is_main:
            _settle(store, spec, inputs, summary)
    except BaseException as e:
        if is_main:
            store.set_status(rid, "failed" if isinstance(e, Exception) else "interrupted", error=str(e))
        raise
    if world > 1:
        barrier()  # the other ranks return the record rank 0 finished
    return store.run(rid)


# ---- inputs ---------------------------------------------------------------------------------------


@dataclass
class ReadoutInputs:
    info: DatasetInfo
    prompt: Any
    dataset: Any
    train: Split
    valid: Split | None
    test: Split
    knowledge: dict[str, Any]  # sample id → SampleKnowledge


def readout_inputs(store: Store, spec: RunSpec) -> ReadoutInputs:
    """The train / valid / evaluated splits of a readout run, each sample rendered exactly as `eval`
    renders it (`engine.render.renderer`: prompt, knowledge block, modalities, system prompt). Train and
    valid samples without a usable target are skipped; a sample that cannot be rendered is kept as a
    failure (test) or skipped (train/valid). Raises AffectbenchError when train is empty."""
    from ..datasets import load_dataset, select_samples
    from ..engine.gather import gather_knowledge
    from ..engine.render import renderer
    from ..engine.scoring import target_problem
    from ..prompts import load_prompt

    ft = spec.finetune or FinetuneSpec()
    dataset = load_dataset(spec.dataset.name, spec.dataset.root, **spec.dataset.options)
    info = dataset.info
    prompt = load_prompt(spec.prompt, info, spec.prompt_language)
    budget = getattr(prompt, "knowledge_budget", 1500)
    knowledge = gather_knowledge(spec, store, info, budget) if spec.knowledge else {}
    render = renderer(spec, info, prompt, knowledge)

    def split(name: str, limit: int | None, fitting: bool) -> Split:
        samples = select_samples(dataset.load(name), spec.limit, spec.seed)
        if limit is not None:
            samples = select_samples(samples, limit, spec.seed)
        out = Split(name, [])
        for s in samples:
            if fitting and target_problem(s.target, info):
                out.skipped += 1
                continue
            task = render(s)
            if task.error or task.conversation is None:
                out.failed[s.id] = task.error or "render failed"
                continue
            out.items.append(Item(s, task.conversation, input_digest(s, task.conversation)))
        return out

    train = split(ft.train_split, ft.train_limit, True)
    if not train.items:
        raise AffectbenchError(
            f"readout run {spec.run_id}: split {ft.train_split!r} of {spec.dataset.name!r} gave no samples with "
            f"a usable target ({train.skipped} skipped, {len(train.failed)} failed to render)"
        )
    valid = split(ft.valid_split, None, True) if ft.valid_split else None
    test = split(spec.split, None, False)
    return ReadoutInputs(info, prompt, dataset, train, valid, test, knowledge)


def input_digest(sample: Sample, conversation: Conversation) -> str:
    """sha256 (16 hex) of a rendered conversation (text, knowledge, media paths) and the sample's content."""
    from ..engine.provenance import sample_digest

    return hashlib.sha256(f"{conversation!r}\0{sample_digest(sample)}".encode()).hexdigest()[:16]


def _segment(store: Store, spec: RunSpec, inputs: ReadoutInputs) -> dict[str, Any]:
    """This start's provenance: versions, prompt text, data of every split read, knowledge digest, model."""
    from ..engine import provenance

    splits = [inputs.train, inputs.valid, inputs.test]
    samples = [it.sample for sp in splits if sp for it in sp.items]
    files = sorted({f for sp in splits if sp for f in inputs.dataset.label_files(sp.name)})
    data = provenance.data_record(samples, files, inputs.dataset.root)
    ids = data.pop("samples")
    texts = {sid: k.text for sid, k in inputs.knowledge.items() if k.text}
    kfp = provenance.knowledge_record(spec.knowledge, texts, ids) if spec.knowledge else None
    env = provenance.segment_env(spec, inputs.prompt, data, kfp)
    env.update(provenance.model_provenance(spec.model))
    return env


# ---- hidden states --------------------------------------------------------------------------------


def pooled_states(hidden_states: Sequence[Any], attention_mask: Any, pool: str):
    """(batch, layers, hidden) float32: each layer's state at the last non-padding token (`last`; either
    padding side) or its mean over the non-padding tokens (`mean`)."""
    import torch

    mask = attention_mask.to(hidden_states[0].device)
    states = torch.stack([h.float() for h in hidden_states], dim=1)  # (B, L, T, H)
    if pool == "mean":
        m = mask[:, None, :, None].float()
        return (states * m).sum(2) / m.sum(2).clamp(min=1.0)
    width = mask.shape[1]
    last = width - 1 - torch.flip(mask, dims=[1]).argmax(1)  # index of the last 1 in each row
    return states[torch.arange(states.shape[0]), :, last]


def forward_states(model: Any, inputs: dict[str, Any]):
    """The model's hidden states (tuple of (B, T, H)) on `inputs`, computing logits for one position only."""
    out = model(**inputs, output_hidden_states=True, logits_to_keep=1, use_cache=False)
    states = getattr(out, "hidden_states", None)
    if states is None:
        raise AffectbenchError(f"{type(model).__name__} returned no hidden_states; it cannot be read out")
    return states


def feature_key(spec: RunSpec, base: dict[str, Any], pool: str) -> str:
    """What cached features come from: the model (its identity and weights), the media settings, the
    pooling. The rendered input of each sample is checked row by row (`Item.digest`)."""
    from ..engine.provenance import model_provenance

    mspec = spec.model.model_copy(update={"adapter": None})
    data = {
        "model": mspec.identity(),
        "weights": model_provenance(mspec).get("weights"),
        "base": base,
        "media": spec.media.model_dump(mode="json"),
        "pool": pool,
    }
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()[:16]


def extract_features(
    store: Store, key: str, trainable: Any, items: list[Item], pool: str, batch_size: int, progress: bool = False
) -> tuple[Any, dict[str, int]]:
    """(n, layers, hidden) float32 features of `items`, in order: cached rows of set `key` whose input digest
    matches are reused, the rest computed with the frozen backbone in batches (each batch committed, so a
    killed extraction resumes). Returns the array and {"reused", "computed"}."""
    import numpy as np
    import torch

    from ..core.progress import progress_bar

    digests = {it.sample.id: it.digest for it in items}
    cached = store.features(key, digests)
    todo = [it for it in items if it.sample.id not in cached]
    module = trainable.module
    was_training = module.training
    module.eval()
    with progress_bar(progress, f"features {key}", len(items), len(items) - len(todo), unit="samples") as advance:
        for start in range(0, len(todo), max(1, batch_size)):
            chunk = todo[start : start + batch_size]
            enc = trainable.encode_prompt([trainable.prepare(it.conversation) for it in chunk])
            with torch.inference_mode():
                pooled = pooled_states(forward_states(module, enc), enc["attention_mask"], pool).cpu().numpy()
            rows = []
            for it, arr in zip(chunk, pooled, strict=True):
                arr = np.ascontiguousarray(arr, dtype=FEATURE_DTYPE)
                rows.append((it.sample.id, it.digest, FEATURE_DTYPE, arr.shape, arr.tobytes()))
                cached[it.sample.id] = (FEATURE_DTYPE, arr.shape, arr.tobytes())
            store.put_features(key, rows)
            advance(len(chunk))
    module.train(was_training)
    out = [np.frombuffer(cached[it.sample.id][2], dtype=cached[it.sample.id][0]).reshape(cached[it.sample.id][1])
           for it in items]  # fmt: skip
    return np.stack(out) if out else np.zeros((0, 0, 0), dtype=FEATURE_DTYPE), {
        "reused": len(items) - len(todo),
        "computed": len(todo),
    }


def resolve_layer(layer: int | str, n_layers: int) -> int | None:
    """A hidden_states index in [0, n_layers) (negative counts from the end), None for "auto".
    Raises AffectbenchError for a layer the model does not have."""
    if layer == "auto":
        return None
    idx = int(layer) + n_layers if int(layer) < 0 else int(layer)
    if not 0 <= idx < n_layers:
        raise AffectbenchError(
            f"readout.layer {layer} does not exist: the model has hidden_states 0 … {n_layers - 1} "
            "(0 = embeddings, negative counts from the end)"
        )
    return idx


# ---- probe ---------------------------------------------------------------------------------------


@dataclass
class ProbeFit:
    layer: int
    alpha: float
    selected_on: str  # "valid", "train-cv" or "fixed"
    scores: dict[int, dict[float, float]]  # layer → alpha → selection score (higher is better)
    criterion: str
    estimator: Any


def _probe_estimator(task: TaskType, alpha: float, seed: int):
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task is TaskType.REGRESSION:
        return make_pipeline(StandardScaler(), Ridge(alpha=alpha))
    return make_pipeline(StandardScaler(), LogisticRegression(C=1.0 / alpha, max_iter=2000, random_state=seed))


def _selection_score(task: TaskType, estimator: Any, x, y) -> float:
    """Higher is better: −MAE (regression; Wen & Tan select on valid MAE) or accuracy − 1e-3·log loss
    (labels: accuracy, ties broken by the calibrated likelihood)."""
    import numpy as np

    if task is TaskType.REGRESSION:
        return -float(np.mean(np.abs(estimator.predict(x) - y)))
    from sklearn.metrics import log_loss

    proba = estimator.predict_proba(x)
    acc = float(np.mean(estimator.classes_[proba.argmax(1)] == y))
    return acc - 1e-3 * float(log_loss(y, proba, labels=estimator.classes_))


def fit_probe(
    task: TaskType,
    x_train,
    y_train,
    x_valid=None,
    y_valid=None,
    *,
    layer: int | str = "auto",
    alpha: float | str = "auto",
    alphas: Sequence[float] = (0.1, 1.0, 10.0, 100.0, 1000.0),
    seed: int = 0,
) -> ProbeFit:
    """Fit the probe on (n, layers, hidden) features: every candidate layer × L2 strength is fit on train
    and scored on valid (`_selection_score`), or by `CV_FOLDS`-fold CV on train when no valid set is given;
    the best is refit on train. Raises AffectbenchError for a label probe with one class."""
    import numpy as np

    require("sklearn", "finetune", "readout probes (ridge / logistic heads)")
    from sklearn.model_selection import KFold, StratifiedKFold

    y_train = np.asarray(y_train)
    if task is not TaskType.REGRESSION and len(set(y_train.tolist())) < 2:
        raise AffectbenchError(f"readout probe: the train split has one label only ({y_train[0]!r}); nothing to fit")
    n_layers = x_train.shape[1]
    fixed = resolve_layer(layer, n_layers)
    layers = [fixed] if fixed is not None else list(range(n_layers))
    grid = [float(alpha)] if alpha != "auto" else [float(a) for a in alphas]
    has_valid = x_valid is not None and len(x_valid) > 0
    if has_valid:
        selected_on = "valid"
    elif len(layers) * len(grid) == 1:
        selected_on = "fixed"
    else:
        selected_on = "train-cv"
    scores: dict[int, dict[float, float]] = {}
    if selected_on != "fixed":
        for li in layers:
            scores[li] = {}
            for a in grid:
                if has_valid:
                    est = _probe_estimator(task, a, seed).fit(x_train[:, li], y_train)
                    scores[li][a] = _selection_score(task, est, x_valid[:, li], np.asarray(y_valid))
                    continue
                if task is TaskType.REGRESSION:
                    folds = KFold(min(CV_FOLDS, len(y_train)), shuffle=True, random_state=seed)
                else:
                    smallest = min(np.unique(y_train, return_counts=True)[1])
                    folds = StratifiedKFold(max(2, min(CV_FOLDS, smallest)), shuffle=True, random_state=seed)
                vals = []
                for tr, va in folds.split(x_train[:, li], y_train):
                    est = _probe_estimator(task, a, seed).fit(x_train[tr, li], y_train[tr])
                    vals.append(_selection_score(task, est, x_train[va, li], y_train[va]))
                scores[li][a] = float(np.mean(vals))
        # the best score; ties go to the earlier layer and the stronger regularisation (larger alpha)
        best_layer, best_alpha = max(
            ((li, a) for li in layers for a in grid), key=lambda la: (scores[la[0]][la[1]], -la[0], la[1])
        )
    else:
        best_layer, best_alpha = layers[0], grid[0]
    est = _probe_estimator(task, best_alpha, seed).fit(x_train[:, best_layer], y_train)
    criterion = "-MAE" if task is TaskType.REGRESSION else "accuracy - 1e-3 log loss"
    return ProbeFit(best_layer, best_alpha, selected_on, scores, criterion, est)


def _targets(info: DatasetInfo, items: list[Item]):
    import numpy as np

    if info.task is TaskType.REGRESSION:
        return np.array([float(it.sample.target) for it in items], dtype=np.float64)
    return np.array([str(it.sample.target) for it in items], dtype=object)


def _probe(store, spec, ro: ReadoutSpec, trainable, inputs: ReadoutInputs, batch_size, progress) -> dict[str, Any]:
    """Extract (or reuse) features of every split, fit and select the probe, store the test predictions."""
    import torch

    from .lora import deterministic

    ft = spec.finetune or FinetuneSpec()
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    threads = deterministic(ft.threads)
    t0 = time.perf_counter()
    key = feature_key(spec, trainable.base, ro.pool)
    try:
        feats, counts = {}, {"reused": 0, "computed": 0}
        for sp in (inputs.train, inputs.valid, inputs.test):
            if sp is None:
                continue
            feats[sp.name], c = extract_features(store, key, trainable, sp.items, ro.pool, batch_size, progress)
            counts = {k: counts[k] + c[k] for k in counts}
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])
    t_feat = time.perf_counter() - t0
    info = inputs.info
    valid = inputs.valid
    fit = fit_probe(
        info.task,
        feats[inputs.train.name],
        _targets(info, inputs.train.items),
        feats[valid.name] if valid and valid.items else None,
        _targets(info, valid.items) if valid and valid.items else None,
        layer=ro.layer,
        alpha=ro.alpha,
        alphas=ro.alphas,
        seed=spec.seed,
    )
    x_test = feats[inputs.test.name]
    values, probs = _probe_predict(info, fit, x_test)
    _store_predictions(store, spec, inputs, values, probs)
    n_layers = feats[inputs.train.name].shape[1]
    return {
        "method": "probe",
        "layer": fit.layer,
        "layers": n_layers,
        "alpha": fit.alpha,
        "pool": ro.pool,
        "selected_on": fit.selected_on,
        "criterion": fit.criterion,
        "selection": {str(li): {str(a): round(v, 6) for a, v in row.items()} for li, row in fit.scores.items()},
        "features": {"key": key, **counts, "extract_s": round(t_feat, 2)},
        "torch_threads": threads,
    }


def _probe_predict(info: DatasetInfo, fit: ProbeFit, x_test) -> tuple[list[Any], list[dict[str, float] | None]]:
    if len(x_test) == 0:
        return [], []
    x = x_test[:, fit.layer]
    if info.task is TaskType.REGRESSION:
        return [float(v) for v in fit.estimator.predict(x)], [None] * len(x)
    proba = fit.estimator.predict_proba(x)
    classes = [str(c) for c in fit.estimator.classes_]
    values = [classes[i] for i in proba.argmax(1)]
    return values, [{c: round(float(p), 6) for c, p in zip(classes, row, strict=True)} for row in proba]


# ---- predictions and metrics -----------------------------------------------------------------------


def _store_predictions(store: Store, spec: RunSpec, inputs: ReadoutInputs, values, probs) -> None:
    """One prediction per test sample: the head's value (never rounded or clipped: the suite does that),
    class probabilities for labels, the data digest and what knowledge reached the prompt."""
    from ..engine.gather import missing_knowledge
    from ..engine.provenance import sample_digest
    from ..engine.record import record_knowledge

    preds = []
    for it, v, pr in zip(inputs.test.items, values, probs, strict=True):
        meta: dict[str, Any] = {
            "data": sample_digest(it.sample),
            "readout": spec.readout.method if spec.readout else "probe",
        }
        if pr is not None:
            meta["probs"] = pr
        mods = tuple(spec.media.modalities)  # what the rendered prompt carried (cascade: as perception cues)
        p = Prediction(it.sample.id, repr(v), v, True, it.sample.target, it.sample.group, None, None, mods, meta)
        preds.append(p)
    for s in inputs.dataset.load(inputs.test.name):
        if s.id in inputs.test.failed:
            err = inputs.test.failed[s.id]
            preds.append(Prediction(s.id, None, None, False, s.target, s.group, None, err, reason="model_error"))
    if spec.knowledge:
        for p in preds:
            record_knowledge(p, inputs.knowledge.get(p.sample_id) or missing_knowledge(spec))
    store.add_predictions(spec.run_id, preds)


def _settle(store: Store, spec: RunSpec, inputs: ReadoutInputs, summary: dict[str, Any]) -> RunRecord:
    """Score the stored values with the dataset's suite (no re-parsing), add the readout's record, mark done."""
    from ..engine.gather import knowledge_metrics
    from ..engine.scoring import score_run

    rid = spec.run_id
    metrics = score_run(store, rid, inputs.info, None, write=False)
    summary = dict(
        summary,
        n_train=len(inputs.train.items),
        n_valid=len(inputs.valid.items) if inputs.valid else 0,
        skipped={"train": inputs.train.skipped, "valid": inputs.valid.skipped if inputs.valid else 0},
    )
    metrics["_readout"] = summary
    if spec.knowledge:
        metrics.update(knowledge_metrics(store, rid))
    store.set_metrics(rid, metrics)
    store.set_status(rid, "done")
    return store.run(rid)


# ---- lora_head -------------------------------------------------------------------------------------


def head_card(path: Path) -> dict[str, Any]:
    """The readout card of an adapter folder (layer, pool, labels, target mean/std)."""
    return json.loads((Path(path) / CARD).read_text())


def _lora_head(store, spec, ro: ReadoutSpec, trainable, inputs: ReadoutInputs, batch_size, progress) -> dict[str, Any]:
    """Train LoRA + head with the Trainer, keep the best validation epoch, store the test predictions."""
    from . import lora
    from .guard import step_guard

    ft = spec.finetune or FinetuneSpec()
    info = inputs.info
    rid = spec.run_id
    out_dir = store.workspace / "artifacts" / rid
    regression = info.task is TaskType.REGRESSION
    y = _targets(info, inputs.train.items)
    scale = (float(y.mean()), float(y.std()) or 1.0) if regression else (0.0, 1.0)
    labels = [] if regression else list(info.labels)
    module = trainable.module
    n_layers = module.config.get_text_config().num_hidden_layers + 1
    layer = resolve_layer(ro.layer, n_layers)
    layer = n_layers - 1 if layer is None else layer  # Wen & Tan read the final layer
    card = {
        "method": "lora_head",
        "layer": layer,
        "pool": ro.pool,
        "labels": labels,
        "target_mean": scale[0],
        "target_std": scale[1],
        "loss": ro.loss if regression else "cross_entropy",
        "base": trainable.base,
    }
    import torch

    rank, world = lora.rank_world()
    every = lora.checkpoint_steps(None)
    key = _head_inputs_key(spec, inputs, trainable.base)
    lora.check_inputs_key(out_dir, key)
    args = lora.training_arguments(
        ft, out_dir, seed=spec.seed, checkpoint_every=every, has_valid=bool(inputs.valid and inputs.valid.items),
        world=world, n_train=len(inputs.train.items),
    )  # fmt: skip
    parallel = lora.data_parallel_record(len(inputs.train.items), ft, world, rank=rank, run=f"readout {rid}")
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    threads = lora.deterministic(ft.threads)
    lora.seed_everything(spec.seed)
    model = head_model(module, ft, int(module.config.get_text_config().hidden_size), len(labels) or 1)
    collate = _HeadCollator(trainable, info, scale)
    log_fn = _logger(store, rid)
    valid = inputs.valid.items if inputs.valid else []
    guard = step_guard()  # the same first-step / finite-gradient guard as generative SFT
    trainer = _head_trainer(model, args, ft, inputs.train.items, valid, collate, layer, ro, regression, out_dir, log_fn)
    trainer.add_callback(guard)
    if rank == 0:
        lora.write_inputs_key(out_dir, key)
    t0 = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=lora.last_checkpoint(out_dir))
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])
    history = lora.loss_history(trainer.state.log_history)  # the same on every rank
    best = min((h for h in history if h["split"] == "valid"), key=lambda h: h["loss"], default=None)
    train_losses = [h["loss"] for h in history if h["split"] == "train"]
    summary = {
        "method": "lora_head",
        "layer": layer,
        "layers": n_layers,
        "pool": ro.pool,
        "loss": card["loss"],
        "best_epoch": best["epoch"] if best else ft.epochs,
        "best_valid_loss": best["loss"] if best else None,
        "first_train_loss": train_losses[0] if train_losses else math.nan,
        "last_train_loss": train_losses[-1] if train_losses else math.nan,
        "steps": trainer.state.global_step,
        "train_s": round(time.perf_counter() - t0, 2),
        "torch_threads": threads,
        # optimizer, schedule, warm-up as SFT records them (its loss_* fields are about answer tokens)
        "recipe": {k: v for k, v in lora.recipe_record(ft, len(inputs.train.items)).items() if "loss" not in k},
        **parallel,  # world, samples_per_step, repeated_per_epoch (lora.data_parallel_record)
        "guard": guard.figures,  # the first optimizer step's figures (guard.check_adapter_moved)
    }
    if rank != 0:  # rank 0 alone saves, predicts and writes to the store
        return summary
    final = _save_head(model, out_dir / "final", card)
    adapter = out_dir / "best" if best and (out_dir / "best").exists() else final
    if adapter != final:
        _load_head_weights(model, adapter)
    (adapter / CARD).write_text(json.dumps(dict(card, best_epoch=best["epoch"] if best else ft.epochs), indent=2))
    store.set_artifact(rid, "adapter", adapter)
    values, probs = predict_head(model, trainable, inputs.test.items, card, batch_size)
    _store_predictions(store, spec, inputs, values, probs)
    return dict(summary, adapter=str(adapter))


def head_model(module: Any, ft: FinetuneSpec, hidden: int, n_out: int):
    """`module` with a linear head (`HEAD`, float32) wrapped by peft: LoRA on the language model's linear
    layers (or `ft.target_modules`) and the head trained in full and saved with the adapter."""
    import torch
    from peft import LoraConfig, get_peft_model

    from .backends import lm_linear_modules

    setattr(module, HEAD, torch.nn.Linear(hidden, n_out).to(next(module.parameters()).device))
    if isinstance(ft.target_modules, str) and ft.target_modules == "all-linear":
        targets: list[str] | str = [n for n in lm_linear_modules(module, ft.train_towers) if HEAD not in n]
    else:
        targets = ft.target_modules
    config = LoraConfig(
        r=ft.rank, lora_alpha=ft.alpha, lora_dropout=ft.dropout, target_modules=targets, modules_to_save=[HEAD]
    )
    if ft.gradient_checkpointing and hasattr(module, "enable_input_require_grads"):
        module.enable_input_require_grads()
    return get_peft_model(module, config)


def _head_of(model: Any):
    """The head of a peft model, or of one wrapped by DDP (the Trainer's training forward)."""
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, DistributedDataParallel):
        model = model.module
    return getattr(model.get_base_model(), HEAD)


def head_outputs(model: Any, inputs: dict[str, Any], layer: int, pool: str):
    """(B, n_out) head outputs on the pooled hidden state of `layer` (peft model with the head)."""
    states = forward_states(model, inputs)
    pooled = pooled_states([states[layer]], inputs["attention_mask"], pool)[:, 0]
    head = _head_of(model)
    return head(pooled.to(head.weight.dtype))


class _HeadCollator:
    """Items → prompt inputs (as eval renders and encodes them) plus `readout_target` (standardised score,
    or the label's index)."""

    def __init__(self, trainable: Any, info: DatasetInfo, scale: tuple[float, float]) -> None:
        self.t, self.info, self.scale = trainable, info, scale

    def __call__(self, items: list[Item]) -> dict[str, Any]:
        import torch

        enc = dict(self.t.encode_prompt([self.t.prepare(it.conversation) for it in items]))
        if self.info.task is TaskType.REGRESSION:
            mean, std = self.scale
            y = torch.tensor([(float(it.sample.target) - mean) / std for it in items], dtype=torch.float32)
        else:
            y = torch.tensor([self.info.labels.index(str(it.sample.target)) for it in items], dtype=torch.long)
        enc["readout_target"] = y
        return enc


def _head_trainer(
    model, args, ft: FinetuneSpec, train, valid, collate, layer: int, ro: ReadoutSpec, regression: bool, out_dir, log_fn
):
    import torch
    import torch.nn.functional as F
    from transformers import Trainer, TrainerCallback
    from transformers.trainer_callback import PrinterCallback

    def row_losses(model, inputs):
        """(per-sample loss (B,) float32, head outputs): MSE / L1 on the standardised score or cross-entropy."""
        inputs = dict(inputs)
        target = inputs.pop("readout_target")
        out = head_outputs(model, inputs, layer, ro.pool)
        if regression:
            pred = out[:, 0].float()
            rows = (
                F.l1_loss(pred, target, reduction="none")
                if ro.loss == "l1"
                else F.mse_loss(pred, target, reduction="none")
            )
        else:
            rows = F.cross_entropy(out.float(), target, reduction="none")
        return rows, out

    class HeadTrainer(RecipeSchedule, Trainer):
        """Trainer whose loss is the head's per-sample MSE / L1 / cross-entropy, summed and divided by the
        samples of the whole optimizer step (all micro-batches and ranks), so batch size, accumulation and
        data parallelism give one update; the logged train loss is that sample-weighted mean, and the
        validation loss the mean over the validation samples (gathered over ranks, duplicates dropped),
        not a mean of per-batch means."""

        loss_is_scaled_for_ga = True
        recipe = ft

        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self.model_accepts_loss_kwargs = True  # num_items_in_batch reaches compute_loss

        def get_batch_samples(self, epoch_iterator, num_batches, device):
            batch_samples, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
            n = torch.tensor(sum(len(b["readout_target"]) for b in batch_samples), device=device)
            if self.args.world_size > 1:
                n = self.accelerator.gather(n).sum()
            return batch_samples, n

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            rows, out = row_losses(model, inputs)
            if num_items_in_batch is None or not model.training:
                loss = rows.mean()
            else:  # DDP averages the ranks' gradients: undo its 1/world so the step's sum / samples remains
                loss = rows.sum() / num_items_in_batch.clamp(min=1) * self.accelerator.num_processes
            return (loss, out) if return_outputs else loss

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            """(mean loss of the batch, per-sample losses (B, 1), None)."""
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                rows, _ = row_losses(model, inputs)
            return rows.mean().detach(), rows.detach()[:, None], None

        def evaluation_loop(
            self, dataloader, description, prediction_loss_only=None, ignore_keys=None, metric_key_prefix="eval"
        ):
            out = super().evaluation_loop(dataloader, description, False, ignore_keys, metric_key_prefix)
            if out.predictions is not None and len(out.predictions):
                out.metrics[f"{metric_key_prefix}_loss"] = float(out.predictions[:, 0].astype("float64").mean())
            return out._replace(predictions=None)

        def create_optimizer(self, *a, **kw):
            if ro.head_lr is None or self.optimizer is not None:
                return super().create_optimizer(*a, **kw)
            head = [p for n, p in self.model.named_parameters() if p.requires_grad and HEAD in n]
            rest = [p for n, p in self.model.named_parameters() if p.requires_grad and HEAD not in n]
            groups = [{"params": rest, "lr": self.args.learning_rate}, {"params": head, "lr": ro.head_lr}]
            self.optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate, weight_decay=self.args.weight_decay)
            return self.optimizer

    class Bookkeeping(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kw):
            control.should_save = True

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs and state.is_world_process_zero:
                log_fn(state.global_step, "train", float(logs["loss"]), float(state.epoch or 0))

        def on_evaluate(self, args, state, control, metrics=None, model=None, **kw):
            loss, epoch = float(metrics["eval_loss"]), round(float(state.epoch or 0))
            if state.is_world_process_zero:
                log_fn(state.global_step, "valid", loss, float(epoch))
                earlier = [h["eval_loss"] for h in state.log_history if "eval_loss" in h][:-1]
                if all(loss < e for e in earlier):
                    _save_head(model, out_dir / "best", {"epoch": epoch, "valid_loss": loss})

    trainer = HeadTrainer(
        model=model, args=args, train_dataset=train, eval_dataset=valid or None, data_collator=collate,
        callbacks=[Bookkeeping()],
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)
    return trainer


def _logger(store: Store, rid: str) -> Callable[..., None]:
    def log_fn(step: int, split: str, loss: float, epoch: float) -> None:
        store.log_train(rid, step, split, loss, epoch)

    return log_fn


def _save_head(model: Any, path: Path, card: dict[str, Any]) -> Path:
    """Write the peft adapter (LoRA + head) and `card` to `path` through a temp folder."""
    import shutil

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    (tmp / CARD).write_text(json.dumps(card, indent=2))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


def _load_head_weights(model: Any, folder: Path) -> None:
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(model, load_file(str(folder / "adapter_model.safetensors")))


def predict_head(model: Any, trainable: Any, items: list[Item], card: dict[str, Any], batch_size: int):
    """(values, class probabilities or None) of the trained head on `items`: the score mapped back to the
    dataset's scale (unclipped), or the label with the highest probability."""
    import torch

    model.eval()
    values: list[Any] = []
    probs: list[dict[str, float] | None] = []
    for start in range(0, len(items), max(1, batch_size)):
        chunk = items[start : start + batch_size]
        enc = trainable.encode_prompt([trainable.prepare(it.conversation) for it in chunk])
        with torch.inference_mode():
            out = head_outputs(model, enc, card["layer"], card["pool"]).float().cpu()
        if not card["labels"]:
            values += [float(v) * card["target_std"] + card["target_mean"] for v in out[:, 0].tolist()]
            probs += [None] * len(chunk)
        else:
            p = torch.softmax(out, dim=-1)
            values += [card["labels"][i] for i in p.argmax(-1).tolist()]
            probs += [
                {lab: round(float(x), 6) for lab, x in zip(card["labels"], row, strict=True)} for row in p.tolist()
            ]
    return values, probs


def _head_inputs_key(spec: RunSpec, inputs: ReadoutInputs, base: dict[str, Any]) -> str:
    """sha256 (16 hex) of what the head's checkpoints come from: spec, base model, every train/valid input."""
    h = hashlib.sha256(canonical_json({"spec": spec.identity(), "base": base}).encode())
    for sp in (inputs.train, inputs.valid):
        for it in sp.items if sp else []:
            h.update(f"{sp.name}\0{it.sample.id}\0{it.digest}\0{it.sample.target}\0".encode())
    return h.hexdigest()[:16]
