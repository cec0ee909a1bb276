"""Readout runs (kind `readout`): a probe or LoRA + head on a hidden state, end to end on tiny real
architectures (the cascade's Gemma3 text LLM and the Qwen2.5-Omni thinker through `hf`), for a label
and a regression dataset; layer selection on valid; the feature cache; unrounded values; gains rows."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from affectbench.core.errors import AffectbenchError
from affectbench.core.specs import FinetuneSpec, RunSpec
from affectbench.core.types import TaskType
from affectbench.engine.runner import Runner
from affectbench.engine.store import Store
from affectbench.finetune.readout import fit_probe, pooled_states, resolve_layer
from tests._tiny import tiny_gemma3_checkpoint, tiny_qwen_omni
from tests.finetune._fixtures import WORDS, dataset_ref, write_corpus

pytest.importorskip("peft")
pytest.importorskip("sklearn")

SPLITS = {"train": 16, "valid": 6, "test": 8}


def _regression_corpus(root):
    """manifest.jsonl with scores in [-3, 3]: positive words score above 0, negative below (varying)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, n in SPLITS.items():
        for i in range(n):
            pos = i % 2 == 0
            word = WORDS["positive" if pos else "negative"][i % 6]
            score = (1.0 + (i % 3) * 0.7) * (1 if pos else -1)
            rows.append({"id": f"{split}{i:03d}", "label": score, "transcript": f"This is {word}.", "split": split})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    opts = {"task": "regression", "score_range": [-3, 3], "metric_suite": "mosi", "task_name": "sentiment"}
    return {"name": "manifest", "root": str(root), "options": opts}


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ro")
    corpus = [f"This is {w}. positive negative sentiment score" for ws in WORDS.values() for w in ws] * 3
    llm = str(tiny_gemma3_checkpoint(tmp / "gemma", corpus))
    model = {"backend": "cascade", "name": llm, "options": {"experts": ["lexicon"], "cache_dir": str(tmp / "cues")}}
    labels = dataset_ref(write_corpus(tmp / "labels", SPLITS))
    return tmp, model, labels, _regression_corpus(tmp / "scores")


def _spec(model, ds, readout, ft=None, **kw) -> RunSpec:
    return RunSpec(kind="readout", dataset=ds, model=model, media={"modalities": "T"}, readout=readout,
                   finetune=ft or FinetuneSpec(), **kw)  # fmt: skip


# ---- probe ------------------------------------------------------------------------------------------


def test_probe_on_labels_learns_records_selection_and_reuses_cached_features(gemma, tmp_path):
    _, model, ds, _ = gemma
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    runner = Runner(store, progress=False)
    spec = _spec(model, ds, {"method": "probe", "pool": "mean"})
    rec = runner.run(spec)
    assert rec.status == "done" and rec.kind == "readout"
    ro = rec.metrics["_readout"]
    # tiny Gemma3: 2 decoder layers → hidden_states 0 (embeddings) … 2; each layer × alpha scored on valid
    assert ro["layers"] == 3 and ro["selected_on"] == "valid"
    assert sorted(ro["selection"]) == ["0", "1", "2"] and all(len(v) == 5 for v in ro["selection"].values())
    assert ro["features"] == {**ro["features"], "reused": 0, "computed": 16 + 6 + 8}
    preds = store.predictions(rec.id)
    assert len(preds) == 8 and all(p.value in ("negative", "positive") for p in preds)
    assert all(abs(sum(p.meta["probs"].values()) - 1) < 1e-4 for p in preds)
    # the classification suite scored the values: accuracy = share of stored values equal to the target
    acc = np.mean([p.value == p.target for p in preds])
    assert rec.metrics["acc"] == pytest.approx(acc) and acc >= 0.75  # the words decide the label

    # a second probe on the same inputs (other alpha) and a rerun of a deleted run compute no feature again
    other = runner.run(_spec(model, ds, {"method": "probe", "pool": "mean", "alpha": 10.0}))
    assert other.id != rec.id and other.metrics["_readout"]["features"]["computed"] == 0
    assert other.metrics["_readout"]["alpha"] == 10.0
    store.delete_run(rec.id)
    again = runner.run(spec)
    assert again.metrics["_readout"]["features"]["reused"] == 30
    assert [p.value for p in store.predictions(again.id)] == [p.value for p in preds]
    # another system prompt renders other inputs: their features are computed, never reused
    sys_spec = _spec(model, ds, {"method": "probe", "pool": "mean"}, generation={"system_prompt": "Be brief."})
    assert runner.run(sys_spec).metrics["_readout"]["features"]["computed"] == 30
    runner.close()


def test_cached_features_equal_the_models_own_hidden_states_of_each_prompt_alone(gemma, tmp_path):
    """Reference: transformers' `output_hidden_states` of one prompt at a time (no padding), pooled by hand."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from affectbench.finetune.readout import feature_key, readout_inputs
    from affectbench.models import build_model

    _, model, ds, _ = gemma
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    runner = Runner(store, progress=False)
    for pool in ("last", "mean"):
        spec = _spec(model, ds, {"method": "probe", "pool": pool, "layer": 1}, limit=10)
        rec = runner.run(spec)
        assert rec.metrics["_readout"]["layer"] == 1 and rec.metrics["_readout"]["selected_on"] == "valid"
        inputs = readout_inputs(store, spec)
        items = inputs.test.items
        base = {"backend": "cascade", "name": model["name"]}
        cached = store.features(feature_key(spec, base, pool), {it.sample.id: it.digest for it in items})
        cascade = build_model(spec.model, spec.media)
        tok = AutoTokenizer.from_pretrained(model["name"])
        lm = AutoModelForCausalLM.from_pretrained(model["name"]).eval()
        for it in items:
            text = cascade.llm_prompt(cascade.prepare(it.conversation), spec.generation)
            ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
            with torch.no_grad():
                hs = lm(input_ids=ids, output_hidden_states=True).hidden_states
            want = np.stack([(h[0, -1] if pool == "last" else h[0].mean(0)).numpy() for h in hs])
            dtype, shape, blob = cached[it.sample.id]
            got = np.frombuffer(blob, dtype=dtype).reshape(shape)
            np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    runner.close()


def test_regression_probe_values_are_unrounded_and_scored_by_the_mmsa_suite(gemma, tmp_path):
    _, model, _, ds = gemma
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    rec = Runner(store, progress=False).run(_spec(model, ds, {"method": "probe", "pool": "mean"}))
    preds = store.predictions(rec.id)
    values = np.array([p.value for p in preds], dtype=float)
    targets = np.array([p.target for p in preds], dtype=float)
    assert all(isinstance(p.value, float) for p in preds)
    assert any(abs(v * 10 - round(v * 10)) > 1e-6 for v in values)  # not on a 0.1 grid: never rounded
    m = rec.metrics
    # MMSA's definitions, computed here from the stored values (REFERENCE.md §3)
    assert m["MAE_answered"] == pytest.approx(np.mean(np.abs(values - targets)), abs=1e-4)
    acc7 = np.mean(np.round(np.clip(values, -3, 3)) == np.round(np.clip(targets, -3, 3)))
    assert m["Mult_acc_7"] == pytest.approx(acc7, abs=1e-4)
    nz = targets != 0
    assert m["Non0_acc_2"] == pytest.approx(np.mean((values[nz] > 0) == (targets[nz] > 0)), abs=1e-4)
    assert m["_readout"]["criterion"] == "-MAE" and m["Non0_acc_2"] >= 0.75


def test_probe_reads_any_hf_family_last_token_without_a_valid_split(tmp_path):
    """The Qwen2.5-Omni thinker through `hf`; no valid split: layer and alpha chosen by CV on train."""
    model = {"backend": "hf", "name": str(tiny_qwen_omni(tmp_path / "omni"))}
    ds = dataset_ref(write_corpus(tmp_path / "data", SPLITS))
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    ft = FinetuneSpec(valid_split=None)
    rec = Runner(store, progress=False).run(_spec(model, ds, {"method": "probe", "pool": "last"}, ft))
    ro = rec.metrics["_readout"]
    assert rec.status == "done" and ro["selected_on"] == "train-cv"
    assert ro["features"]["computed"] == 16 + 8 and ro["n_valid"] == 0
    assert ro["layers"] == _hidden_layers(model["name"]) + 1
    assert rec.metrics["_n"] == 8


def _hidden_layers(folder: str) -> int:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(folder)
    text = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    return int(text.num_hidden_layers)


# ---- layer selection (independent of any model: features built so that one layer carries the signal) ----


def _layered(n, informative: int, n_layers=4, dim=6, seed=0, task=TaskType.CLASSIFICATION):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_layers, dim))
    score = rng.normal(size=n)
    x[:, informative, 0] = score * 3 + rng.normal(scale=0.1, size=n)
    y = np.where(score > 0, "pos", "neg").astype(object) if task is TaskType.CLASSIFICATION else score
    return x, y


@pytest.mark.parametrize("task", [TaskType.CLASSIFICATION, TaskType.REGRESSION])
def test_layer_selection_finds_the_informative_middle_layer(task):
    xt, yt = _layered(80, 2, task=task, seed=1)
    xv, yv = _layered(40, 2, task=task, seed=2)
    fit = fit_probe(task, xt, yt, xv, yv, alphas=(1.0, 100.0))
    assert fit.layer == 2 and fit.selected_on == "valid"
    best = max(fit.scores[2].values())
    assert all(max(fit.scores[li].values()) < best for li in (0, 1, 3))
    cv = fit_probe(task, xt, yt, alphas=(1.0, 100.0))  # no valid split: cross-validation on train finds it too
    assert cv.layer == 2 and cv.selected_on == "train-cv"
    fixed = fit_probe(task, xt, yt, layer=-1, alpha=1.0)
    assert (fixed.layer, fixed.alpha, fixed.selected_on) == (3, 1.0, "fixed")


def test_bad_layers_and_single_class_are_clear_errors():
    assert resolve_layer(-1, 19) == 18 and resolve_layer("auto", 19) is None
    with pytest.raises(AffectbenchError, match="does not exist"):
        resolve_layer(19, 19)
    x, _ = _layered(10, 1)
    with pytest.raises(AffectbenchError, match="one label"):
        fit_probe(TaskType.CLASSIFICATION, x, np.array(["pos"] * 10, dtype=object))


def test_last_pooling_takes_the_last_real_token_on_either_padding_side():
    import torch

    h = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    left = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 1]])
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    assert pooled_states([h], left, "last")[:, 0, 0].tolist() == [3.0, 7.0]
    assert pooled_states([h], right, "last")[:, 0, 0].tolist() == [2.0, 5.0]
    assert pooled_states([h], left, "mean")[:, 0, 0].tolist() == [2.0, 6.5]


# ---- lora_head ---------------------------------------------------------------------------------------

FT_HEAD = FinetuneSpec(epochs=12, lr=3e-3, batch_size=4, rank=4, alpha=8, dropout=0.0, threads=1)


@pytest.mark.parametrize("which", ["labels", "scores"])
def test_lora_head_trains_saves_reloads_and_predicts_values(gemma, tmp_path, which):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    from affectbench.finetune.backends import trainable_for
    from affectbench.finetune.readout import HEAD, head_card, predict_head, readout_inputs

    _, model, labels, scores = gemma
    ds = labels if which == "labels" else scores
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    spec = _spec(model, ds, {"method": "lora_head", "pool": "mean", "head_lr": 3e-2}, FT_HEAD)
    rec = Runner(store, progress=False).run(spec)
    assert rec.status == "done"
    ro = rec.metrics["_readout"]
    assert ro["method"] == "lora_head" and ro["layer"] == 2  # auto = the last layer (Wen & Tan)
    assert ro["loss"] == ("cross_entropy" if which == "labels" else "mse")
    valid = [v["loss"] for v in store.train_logs(rec.id, "valid")]
    assert len(valid) == 12 and min(valid) < valid[0]
    assert ro["steps"] == 12 * 4  # 16 train samples / batch 4, 12 epochs
    # SFT's schedule, not the Trainer's (whose warm-up runs step 1 at lr 0): floor(0.05 x 48) = 2 warm-up
    # steps, so step 1 runs at lr / 2, and the guard saw it move LoRA and head
    assert ro["recipe"]["warmup_steps"] == 2 and ro["recipe"]["first_step_lr"] == pytest.approx(1.5e-3)
    assert ro["guard"]["lr"] == pytest.approx(1.5e-3) and ro["guard"]["moved"] > 0
    adapter = store.artifact(rec.id, "adapter")
    keys = load_file(str(adapter / "adapter_model.safetensors"))
    assert any(HEAD in k for k in keys) and any("lora_A" in k for k in keys)
    preds = store.predictions(rec.id)
    assert len(preds) == 8
    if which == "labels":  # the words decide the label (as for the probe); scored by the classification suite
        acc = np.mean([p.value == p.target for p in preds])
        assert rec.metrics["acc"] == pytest.approx(acc) and acc >= 0.75
    if which == "scores":
        # positive words score above 0 and negative ones below: the head's values must rank them
        assert rec.metrics["Corr_answered"] >= 0.5
        assert all(isinstance(p.value, float) for p in preds)
        values = np.array([p.value for p in preds])
        targets = np.array([p.target for p in preds], dtype=float)
        assert rec.metrics["MAE_answered"] == pytest.approx(np.mean(np.abs(values - targets)), abs=1e-4)
    # the adapter folder reloads onto a fresh base (peft) and gives the stored predictions
    card = head_card(adapter)
    trainable = trainable_for(spec.model, spec.media, None, spec.generation)
    setattr(trainable.module, HEAD, torch.nn.Linear(trainable.module.config.hidden_size, len(card["labels"]) or 1))
    reloaded = PeftModel.from_pretrained(trainable.module, str(adapter))
    values, _ = predict_head(reloaded, trainable, readout_inputs(store, spec).test.items, card, 8)
    for v, p in zip(values, preds, strict=True):
        assert (v == p.value) if which == "labels" else math.isclose(v, p.value, rel_tol=1e-4, abs_tol=1e-4)


# ---- experiment files and the gains table ------------------------------------------------------------


def test_experiment_readout_entry_gets_knowledge_for_every_split_and_its_own_id():
    from affectbench.config import plan_experiment

    text = """
defaults: {dataset: {name: demo, root: /tmp/none}, split: test, model: {backend: cascade}, generation: {mode: score}}
runs:
  - {name: experts, kind: knowledge, model: {backend: experts}, prompt: describe}
  - {name: probe, kind: readout, knowledge: [experts], readout: {method: probe}}
  - {name: probe4, kind: readout, knowledge: [experts], readout: {method: probe, layer: 4}}
"""
    plan = plan_experiment(text)
    by_name = {n: ids for n, ids in plan.names.items()}
    specs = {s.run_id: s for s in plan.runs}
    probe = specs[by_name["probe"][0]]
    assert probe.kind == "readout" and probe.readout.method == "probe" and probe.run_id.startswith("readout-demo-")
    ksplits = {s.split for s in plan.runs if s.kind == "knowledge"}
    assert {"train", "valid", "test"} <= ksplits  # the probe reads train and valid prompts with knowledge too
    assert by_name["probe4"][0] != probe.run_id
    # decoding settings mean nothing to a head: they leave the run id alone
    assert probe.model_copy(
        update={"generation": probe.generation.model_copy(update={"max_new_tokens": 3})}
    ).run_id == (probe.run_id)
    with pytest.raises(ValueError, match="kind readout"):
        RunSpec(dataset={"name": "demo"}, model={"backend": "cascade"}, readout={"method": "probe"})


def test_gains_table_has_readout_rows_against_zero_shot_and_generative_sft(tmp_path):
    from affectbench.analysis.gains import readout_comparisons
    from affectbench.analysis.runs import eval_runs, setting_label
    from affectbench.engine.scoring import score_run
    from affectbench.engine.store import Prediction
    from affectbench.report.build import build_report
    from tests.finetune._fixtures import write_corpus as corpus

    ds = dataset_ref(corpus(tmp_path / "d", {"test": 12}))
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    from affectbench.datasets import load_dataset

    dataset = load_dataset(ds["name"], ds["root"], **ds["options"])
    samples, info = dataset.load("test"), dataset.info
    model = {"backend": "cascade", "name": "/m"}
    gen = {"mode": "score"}
    runs = {
        "zero": RunSpec(dataset=ds, model=model, generation=gen),
        "gkp": RunSpec(dataset=ds, model=model, generation=gen, knowledge=["knowledge-x"]),
        "sft": RunSpec(dataset=ds, model={**model, "adapter": "finetune-a"}, generation=gen),
        "gkp_sft": RunSpec(dataset=ds, model={**model, "adapter": "finetune-b"}, generation=gen, knowledge=["knowledge-x"]),
        "probe": RunSpec(kind="readout", dataset=ds, model=model, readout={"method": "probe"}),
        "gkp_probe": RunSpec(kind="readout", dataset=ds, model=model, readout={"method": "probe"}, knowledge=["knowledge-x"]),
    }  # fmt: skip
    right = {"zero": 6, "gkp": 7, "sft": 8, "gkp_sft": 9, "probe": 11, "gkp_probe": 12}
    for name, spec in runs.items():
        store.open_run(spec)
        preds = [
            Prediction(s.id, s.target if i < right[name] else "x", s.target if i < right[name] else None,
                       i < right[name], s.target)
            for i, s in enumerate(samples)
        ]  # fmt: skip
        store.add_predictions(spec.run_id, preds)
        score_run(store, spec.run_id, info, None)
        store.set_status(spec.run_id, "done")
    ids = {n: s.run_id for n, s in runs.items()}
    assert {r.id for r in eval_runs(store)} == set(ids.values())
    assert setting_label(store.run(ids["gkp_probe"])) == "GKP+readout:probe"
    rows = {(b.id, o.id): f[o.id] for b, os_, f in readout_comparisons(eval_runs(store)) for o in os_}
    assert rows == {
        (ids["zero"], ids["probe"]): "readout:probe",
        (ids["zero"], ids["gkp_probe"]): "GKP+readout:probe",
        (ids["sft"], ids["probe"]): "readout:probe vs SFT",
        (ids["gkp_sft"], ids["gkp_probe"]): "GKP+readout:probe vs GKP+SFT",
    }
    md = build_report(store, tmp_path / "rep", formats=["md"], n_boot=200)["md"].read_text()
    gains = md.split("## Gains over zero-shot")[1]
    line = next(x for x in gains.splitlines() if "| GKP+readout:probe vs GKP+SFT |" in x)
    # weighted F1 (scikit-learn; an unread answer counts as wrong) of 12/12 vs 9/12 right on the same samples
    from sklearn.metrics import f1_score

    t = [s.target for s in samples]
    base = f1_score(t, [x if i < 9 else "x" for i, x in enumerate(t)], average="weighted", labels=info.labels)
    assert f"| {base:.4f} | 1.0000 | {1 - base:+.4f}" in line
    assert "| readout:probe |" in gains and "| GKP+SFT |" in gains
