"""End-to-end engine tests with the manifest dataset and the scripted test double."""

import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from affectbench.core.specs import DatasetRef, ExecSpec, GenerationSpec, ModelSpec, RunSpec
from affectbench.datasets import select_samples
from affectbench.engine.runner import run_spec
from affectbench.engine.store import Store

LABELS = ["negative", "neutral", "positive"]
REPO = Path(__file__).resolve().parents[2]


def write_manifest(root: Path, n: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with (root / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "transcript", "label", "split", "group"])
        for i in range(n):
            label = LABELS[i % 3]
            w.writerow([f"s{i:04d}", f"utterance {i} sounds {label}", label, "test", f"g{i // 4}"])
    return root


def manifest_spec(root: Path, **kw) -> RunSpec:
    model = kw.pop(
        "model",
        ModelSpec(
            backend="scripted",
            options={
                "rule": "table",
                "answers": {
                    "sounds positive": "Positive!",
                    "sounds negative": "negative",
                    "sounds neutral": "I cannot tell",
                },
            },
        ),
    )
    return RunSpec(
        dataset=DatasetRef(name="manifest", root=str(root), options={"labels": LABELS, "task_name": "sentiment"}),
        model=model,
        media=kw.pop("media", {"modalities": "T"}),
        **kw,
    )


def test_eval_run_scores_parse_failures_and_stores_every_sample(tmp_path):
    root = write_manifest(tmp_path / "data", 30)
    store = Store(tmp_path / "ws" / "affectbench.sqlite")
    rec = run_spec(manifest_spec(root), store, ExecSpec(batch_size=4))
    assert rec.status == "done"
    assert store.count_predictions(rec.id) == 30
    m = rec.metrics
    # neutral answers ("I cannot tell") are unparseable: counted wrong, rate reported
    assert m["_parse_failure_rate"] == pytest.approx(10 / 30, abs=1e-4)
    assert m["acc"] == pytest.approx(20 / 30, abs=1e-4)
    preds = store.predictions(rec.id)
    assert all(p.modalities == ("T",) for p in preds)
    assert {p.value for p in preds if p.ok} == {"positive", "negative"}
    assert rec.env["packages"]["affectbench"]


def test_model_errors_are_stored_per_sample_and_retried_on_rerun(tmp_path):
    root = write_manifest(tmp_path / "data", 12)
    store = Store(tmp_path / "ws.sqlite")
    failing = ModelSpec(
        backend="scripted", options={"rule": "constant", "default": "neutral", "fail_on": "utterance 5 "}
    )
    spec = manifest_spec(root, model=failing)
    rec = run_spec(spec, store, ExecSpec(batch_size=4))
    assert rec.metrics["_errors"] == 1
    errs = [p for p in store.predictions(rec.id) if p.error]
    assert [p.sample_id for p in errs] == ["s0005"] and "scripted failure" in errs[0].error
    assert store.done_ids(rec.id) == {f"s{i:04d}" for i in range(12)} - {"s0005"}


def test_limit_is_a_seeded_subset_in_dataset_order():
    items = list(range(100))
    a = select_samples(items, 10, seed=1)
    assert a == sorted(a) and len(a) == 10
    assert a == select_samples(items, 10, seed=1) and a != select_samples(items, 10, seed=2)


def test_score_mode_uses_options_and_rescore_reparses(tmp_path):
    root = write_manifest(tmp_path / "data", 9)
    store = Store(tmp_path / "ws.sqlite")
    spec = manifest_spec(
        root,
        # one-hot scores: a content-free prior of -inf for two options is refused (see
        # test_option_scoring), so this run scores uncalibrated
        generation=GenerationSpec(mode="score", calibration="none"),
        model=ModelSpec(backend="scripted", options={"rule": "constant", "default": "positive"}),
    )
    rec = run_spec(spec, store)
    preds = store.predictions(rec.id)
    assert all(p.meta["scores"]["positive"] == 0.0 for p in preds)
    assert rec.metrics["acc"] == pytest.approx(3 / 9, abs=1e-4)


def test_rerun_with_a_different_spec_under_the_same_id_is_refused(tmp_path):
    from affectbench.core.errors import StoreError

    root = write_manifest(tmp_path / "data", 3)
    store = Store(tmp_path / "ws.sqlite")
    spec = manifest_spec(root)
    run_spec(spec, store)
    import sqlite3

    other = manifest_spec(root, prompt="sentiment_polarity_fewshot")
    sqlite3.connect(store.path).execute(
        "UPDATE runs SET spec=? WHERE id=?", (other.model_dump_json(), spec.run_id)
    ).connection.commit()
    with pytest.raises(StoreError, match="different spec"):
        run_spec(spec, store)


EXPERIMENT = """
workspace: {ws}
defaults:
  dataset: {{name: manifest, root: {root}, options: {{labels: [negative, neutral, positive], task_name: sentiment}}}}
  media: {{modalities: T}}
exec: {{batch_size: 5, workers: 1}}
runs:
  - name: slow
    model: {{backend: scripted, options: {{rule: table, answers: {{sounds positive: positive, sounds negative: negative, sounds neutral: neutral}}, delay: 0.05}}}}
"""


def test_sigkill_mid_run_then_rerun_stores_every_sample_exactly_once(tmp_path):
    root = write_manifest(tmp_path / "data", 300)
    ws = tmp_path / "ws"
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXPERIMENT.format(ws=ws, root=root))
    cmd = [sys.executable, "-m", "affectbench.cli", "run", str(exp), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    db = ws / "affectbench.sqlite"
    deadline = time.time() + 60
    stored = 0
    while time.time() < deadline:
        time.sleep(0.2)
        if db.exists():
            try:
                store = Store(db)
                runs = store.runs()
                stored = store.count_predictions(runs[0].id) if runs else 0
                store.close()
            except Exception:
                stored = 0
            if stored >= 50:
                break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 50 <= stored < 300, "the run should have been killed part-way"
    store = Store(db)
    rid = store.runs()[0].id
    assert store.run(rid).status == "running"  # killed: never marked done
    partial = store.count_predictions(rid)
    assert partial < 300
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert store.count_predictions(rid) == 300
    ids = [p.sample_id for p in store.predictions(rid)]
    assert len(ids) == len(set(ids)) == 300
    assert store.run(rid).status == "done" and store.run(rid).metrics["acc"] == 1.0


def test_cli_help_imports_no_heavy_dependency():
    code = textwrap.dedent(
        """
        import sys
        from affectbench.cli import app
        from typer.testing import CliRunner
        r = CliRunner().invoke(app, ["--help"])
        assert r.exit_code == 0 and "run" in r.output
        heavy = [m for m in ("torch", "transformers", "av", "ray", "vllm", "cv2", "matplotlib") if m in sys.modules]
        print(heavy)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_errors_are_one_clear_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("runs:\n  - name: a\n    model: {backend: scripted}\n    temprature: 1\n")
    out = subprocess.run([sys.executable, "-m", "affectbench.cli", "run", str(bad)], capture_output=True, text=True)
    assert out.returncode == 2
    assert "temprature" in out.stderr and "Traceback" not in out.stderr


def test_resume_refuses_when_the_model_changed(tmp_path):
    from affectbench.core.errors import StoreError
    from affectbench.engine.provenance import check_same_inputs

    root = write_manifest(tmp_path / "data", 6)
    store = Store(tmp_path / "ws.sqlite")
    rec = run_spec(manifest_spec(root), store)
    assert rec.env["prompt"] and rec.env["fingerprint"]
    with pytest.raises(StoreError, match="model"):
        check_same_inputs(rec, dict(rec.env, fingerprint="other-weights"))
    with pytest.raises(StoreError, match="prompt template"):
        check_same_inputs(rec, dict(rec.env, prompt="sentiment_polarity@2+abc"))
    check_same_inputs(rec, dict(rec.env))  # unchanged: fine


def test_knowledge_policy_mask_blanks_answer_words_in_the_prompt(tmp_path):
    root = write_manifest(tmp_path / "data", 6)
    store = Store(tmp_path / "ws.sqlite")
    echo = ModelSpec(backend="scripted", options={"rule": "constant", "default": "The face looks positive and happy."})
    know = run_spec(manifest_spec(root, kind="knowledge", prompt="describe", model=echo), store)
    seen = ModelSpec(
        backend="scripted", options={"rule": "table", "answers": {"looks positive": "positive"}, "default": "neutral"}
    )
    keep = run_spec(manifest_spec(root, knowledge=[know.id], model=seen), store)
    masked = run_spec(manifest_spec(root, knowledge=[know.id], model=seen, knowledge_policy="mask"), store)
    assert {p.value for p in store.predictions(keep.id)} == {"positive"}
    assert {p.value for p in store.predictions(masked.id)} == {"neutral"}
