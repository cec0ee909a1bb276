"""Run identity and provenance: speed-only options, hub revisions, data/knowledge fingerprints,
resumed segments and read-only stores (issue 14)."""

import csv
import hashlib
import json

import pytest
from typer.testing import CliRunner

from affectbench.cli import app
from affectbench.core.errors import StoreError
from affectbench.core.specs import SPEED_ONLY_OPTIONS, DatasetRef, ExecSpec, MediaSpec, ModelSpec, RunSpec
from affectbench.engine.runner import run_spec
from affectbench.engine.store import Prediction, Store
from tests.engine.test_runner import manifest_spec, write_manifest

# Run ids computed by affectbench before speed-only options, `revision`, media presets and `min_frames`
# existed (commit a80dfb5), for specs that use none of them and spell out that commit's media defaults
# (1 frame at least, 256 x 256 px; the defaults changed since, and so do the ids of runs that use them):
# they must not change.
OLD_MEDIA = MediaSpec(min_frames=1, max_pixels=256 * 256)
OLD_IDS = {
    "eval-mosi-008803572ccb": RunSpec(
        dataset=DatasetRef(name="mosi", root="/data/MOSI"),
        model=ModelSpec(backend="hf", name="Qwen/Qwen2.5-Omni-7B", options={"dtype": "bfloat16"}),
        media=OLD_MEDIA,
    ),
    "knowledge-meld-af55e55d3e47": RunSpec(
        kind="knowledge",
        dataset=DatasetRef(name="meld"),
        model=ModelSpec(backend="experts"),
        prompt="describe",
        media=OLD_MEDIA,
    ),
}


def test_existing_run_ids_are_stable():
    for rid, spec in OLD_IDS.items():
        assert spec.run_id == rid


@pytest.mark.parametrize(
    "option,value",
    [
        ("concurrency", 32),
        ("timeout", 5.0),
        ("max_retries", 9),
        ("device", "cuda:1"),
        ("score_batch", 64),
        ("media_cache", False),
        ("cache_dir", "/tmp/x"),
    ],
)
def test_speed_only_options_keep_the_run_id(option, value):
    assert option in SPEED_ONLY_OPTIONS
    base = OLD_IDS["eval-mosi-008803572ccb"]
    opts = dict(base.model.options, **{option: value})
    faster = base.model_copy(update={"model": base.model.model_copy(update={"options": opts})})
    assert faster.run_id == base.run_id


def test_result_settings_and_revision_change_the_run_id():
    base = OLD_IDS["eval-mosi-008803572ccb"]
    for update in ({"options": {"dtype": "float32"}}, {"revision": "main"}, {"name": "Qwen/Qwen3-Omni"}):
        other = base.model_copy(update={"model": base.model.model_copy(update=update)})
        assert other.run_id != base.run_id, update


def test_raising_concurrency_resumes_the_same_run(tmp_path):
    root = write_manifest(tmp_path / "data", 8)
    store = Store(tmp_path / "ws.sqlite")
    model = ModelSpec(backend="scripted", options={"rule": "constant", "default": "neutral", "fail_on": "utterance 3 "})
    first = run_spec(manifest_spec(root, model=model), store)
    assert first.metrics["_errors"] == 1
    fixed = ModelSpec(
        backend="scripted",
        options={"rule": "constant", "default": "neutral", "fail_on": "utterance 3 ", "concurrency": 16, "delay": 0.0},
    )
    # fail_on stays, so identity is equal; the speed-only options differ and the fingerprint check passes
    second = run_spec(manifest_spec(root, model=fixed), store)
    assert second.id == first.id
    segs = second.env["segments"]
    assert len(segs) == 2 and segs[0]["model_options"] != segs[1]["model_options"]
    assert segs[1]["model_options"]["concurrency"] == 16


def _fake_hub_cache(cache, repo, commits):
    """A Hugging Face hub cache laid out as huggingface_hub documents it: refs/<branch> holds a commit,
    snapshots/<commit>/ the files (test double for a downloaded model)."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    for branch, (commit, weights) in commits.items():
        snap = folder / "snapshots" / commit
        snap.mkdir(parents=True, exist_ok=True)
        (snap / "config.json").write_text('{"architectures": ["X"]}')
        (snap / "model.safetensors").write_bytes(weights)
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / branch).write_text(commit)
    return folder


def test_hub_ids_record_the_resolved_commit_and_weights(tmp_path, monkeypatch):
    from affectbench.models.hf import HFModel

    main, v1 = "a" * 40, "b" * 40
    _fake_hub_cache(tmp_path / "hub", "org/tiny", {"main": (main, b"w-main"), "v1": (v1, b"w-v1")})
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    w_main = HFModel(ModelSpec(backend="hf", name="org/tiny")).weights()
    w_v1 = HFModel(ModelSpec(backend="hf", name="org/tiny", revision="v1")).weights()
    assert (w_main["source"], w_main["commit"], w_main["revision"]) == ("hub", main, "main")
    assert (w_v1["commit"], w_v1["revision"]) == (v1, "v1")
    assert w_main["digest"] != w_v1["digest"]
    missing = HFModel(ModelSpec(backend="hf", name="org/absent")).weights()
    assert missing["commit"] is None


def _set_label(root, sid, label):
    path = root / "manifest.csv"
    rows = list(csv.reader(path.open()))
    for r in rows[1:]:
        if r[0] == sid:
            r[2] = label
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)


def test_a_label_edit_on_disk_refuses_resume_and_rescore_with_a_sentence(tmp_path):
    root = write_manifest(tmp_path / "data", 9)
    ws = tmp_path / "ws"
    store = Store(ws / "affectbench.sqlite")
    rec = run_spec(manifest_spec(root), store)
    assert rec.env["data"]["n"] == 9 and "manifest.csv" in rec.env["data"]["files"]
    assert all(p.meta.get("data") for p in store.predictions(rec.id))
    # s0001 is "neutral" (label i % 3); the user corrects it on disk
    _set_label(root, "s0001", "positive")
    with pytest.raises(StoreError) as e:
        run_spec(manifest_spec(root), store)
    msg = str(e.value)
    assert "the label file manifest.csv differs from the one its predictions were made from" in msg
    assert "the target of 1 stored sample(s) changed (s0001: 'neutral' → 'positive')" in msg
    assert f"affectbench rm {rec.id}" in msg
    r = CliRunner().invoke(app, ["rescore", rec.id, "--workspace", str(ws)])
    assert r.exit_code != 0 and "refusing to rescore" in str(r.exception) and "s0001" in str(r.exception)
    _set_label(root, "s0001", "neutral")  # restored: the run is accepted again
    assert run_spec(manifest_spec(root), store).id == rec.id


def test_a_changed_media_file_refuses_resume(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "a.wav").write_bytes(b"RIFF-one")
    (root / "b.wav").write_bytes(b"RIFF-two")
    (root / "manifest.csv").write_text(
        "id,transcript,label,audio\na,x sounds positive,positive,a.wav\nb,y sounds negative,negative,b.wav\n"
    )
    store = Store(tmp_path / "ws.sqlite")
    spec = manifest_spec(root)
    run_spec(spec, store)
    (root / "b.wav").write_bytes(b"RIFF-changed")
    with pytest.raises(StoreError, match=r"the media or transcript of 1 stored sample\(s\) changed \(b\)"):
        run_spec(spec, store)


def test_knowledge_content_is_recorded_and_a_change_refuses_resume(tmp_path):
    root = write_manifest(tmp_path / "data", 6)
    store = Store(tmp_path / "ws.sqlite")
    echo = ModelSpec(backend="scripted", options={"rule": "constant", "default": "The face looks calm."})
    know = run_spec(manifest_spec(root, kind="knowledge", prompt="describe", model=echo), store)
    model = ModelSpec(backend="scripted", options={"rule": "constant", "default": "neutral", "fail_on": "utterance 2 "})
    spec = manifest_spec(root, knowledge=[know.id], model=model)
    rec = run_spec(spec, store)
    texts = sorted((f"s{i:04d}", "The face looks calm.") for i in range(6))
    expected = hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]
    assert rec.env["knowledge"] == {"runs": [know.id], "digest": expected, "n": 6}
    # the knowledge run's text for one sample is regenerated differently
    store.add_predictions(know.id, [Prediction("s0000", "The face looks angry.", None, True)])
    with pytest.raises(StoreError, match="the knowledge texts changed"):
        run_spec(spec, store)


def test_resumed_runs_keep_one_env_segment_each_with_prompt_text(tmp_path):
    root = write_manifest(tmp_path / "data", 6)
    store = Store(tmp_path / "ws.sqlite")
    model = ModelSpec(backend="scripted", options={"rule": "constant", "default": "neutral", "fail_on": "utterance 1 "})
    spec = manifest_spec(root, model=model)
    run_spec(spec, store)
    rec = run_spec(spec, store)  # retries the failed sample: a second segment
    segs = rec.env["segments"]
    assert len(segs) == 2 and [s["resumed_at"] for s in segs] == [0, 5]
    assert all(s["packages"]["affectbench"] for s in segs)
    text = json.loads(segs[0]["prompt_text"])
    # the stored text is the template the fingerprint hashes (prompts.template: sha256 of its JSON)
    digest = hashlib.sha256(json.dumps(text, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:10]
    assert rec.env["prompt"].endswith("+" + digest)


def test_env_written_before_segments_becomes_the_first_segment():
    from affectbench.engine.store import with_segment

    env = with_segment({"python": "3.10"}, {"python": "3.11"})
    assert env["python"] == "3.11" and [s["python"] for s in env["segments"]] == ["3.10", "3.11"]


def test_read_only_commands_work_on_a_read_only_store(tmp_path):
    import sqlite3

    root = write_manifest(tmp_path / "data", 6)
    ws = tmp_path / "ws"
    store = Store(ws / "affectbench.sqlite")
    rid = run_spec(manifest_spec(root), store).id
    store.close()
    db = ws / "affectbench.sqlite"
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    ro = Store(db, read_only=True)
    assert ro.run(rid).status == "done" and ro.count_predictions(rid) == 6
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.set_status(rid, "x")
    cli = CliRunner()
    for args in (
        ["ls", "runs"],
        ["export", "--out", str(tmp_path / "exp")],
        ["report", "--out", str(tmp_path / "rep"), "--format", "md", "--no-props"],
        ["rescore", rid, "--dry-run"],
    ):
        r = cli.invoke(app, [*args, "--workspace", str(ws)])
        assert r.exit_code == 0, (args, r.output)
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before


def test_exec_spec_is_not_part_of_identity():
    assert "batch_size" in ExecSpec.model_fields and "batch_size" not in RunSpec.model_fields


def test_env_records_perception_library_versions():
    from importlib import metadata

    from affectbench.core.environment import environment

    packages = environment()["packages"]
    for name in ("faster-whisper", "opensmile", "opencv-python-headless", "vaderSentiment"):
        assert packages[name] == metadata.version(name)


def test_a_knowledge_run_grows_over_splits_without_a_refusal(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    rows = ["id,transcript,label,split"] + [
        f"s{i},u{i} sounds positive,positive,{'train' if i < 4 else 'test'}" for i in range(8)
    ]
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    store = Store(tmp_path / "ws.sqlite")
    echo = ModelSpec(backend="scripted", options={"rule": "constant", "default": "calm"})
    train = run_spec(manifest_spec(root, kind="knowledge", prompt="describe", model=echo, split="train"), store)
    test = run_spec(manifest_spec(root, kind="knowledge", prompt="describe", model=echo, split="test"), store)
    assert test.id == train.id and store.count_predictions(test.id) == 8
    (root / "manifest.csv").write_text(
        "\n".join(rows).replace("s1,u1 sounds positive,positive", "s1,u1 sounds positive,negative") + "\n"
    )
    with pytest.raises(StoreError, match=r"s1: 'positive' → 'negative'"):
        run_spec(manifest_spec(root, kind="knowledge", prompt="describe", model=echo, split="train"), store)


def test_read_only_commands_work_when_the_filesystem_refuses_writes(tmp_path):
    """The workspace folder and database are made read-only (chmod) and the commands run as a user
    that cannot write them (as root, through setpriv as nobody, since root ignores permissions)."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    base = Path(tempfile.mkdtemp(prefix="ab-ro-"))  # outside pytest's root-only tmp folder
    try:
        os.chmod(base, 0o755)
        root = write_manifest(base / "data", 6)
        ws = base / "ws"
        store = Store(ws / "affectbench.sqlite")
        rid = run_spec(manifest_spec(root), store).id
        store.close()
        out = base / "out"
        out.mkdir()
        os.chmod(out, 0o777)
        for p in ws.iterdir():
            os.chmod(p, 0o444)
        os.chmod(ws, 0o555)
        src = Path(__file__).resolve().parents[2] / "src"
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
        env = dict(os.environ, PYTHONPATH=str(src), HOME=str(out))
        for args in (
            ["ls", "runs"],
            ["export", "--out", str(out / "exp")],
            ["rescore", rid, "--dry-run"],
            ["report", "--out", str(out / "rep"), "--format", "md", "--no-props"],
        ):
            r = subprocess.run(
                [*prefix, sys.executable, "-m", "affectbench", *args, "--workspace", str(ws)],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
            assert r.returncode == 0, (args, r.stdout, r.stderr)
        assert (out / "rep" / "leaderboard.md").is_file() and (out / "exp" / f"{rid}.jsonl").is_file()
        r = subprocess.run(
            [*prefix, sys.executable, "-m", "affectbench", "rm", rid, "--workspace", str(ws)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert r.returncode != 0  # a writing command does fail there: the test can tell the difference
    finally:
        for dirpath, _, _ in os.walk(base):
            os.chmod(dirpath, 0o755)
        shutil.rmtree(base, ignore_errors=True)
