"""The command line end to end, in process (typer's CliRunner), on the manifest dataset."""

import json

from typer.testing import CliRunner

from affectbench.cli import app
from affectbench.engine.store import Store
from tests.engine.test_runner import write_manifest

EXP = """
workspace: {ws}
defaults:
  dataset: {{name: manifest, root: {root}, options: {{labels: [negative, neutral, positive], task_name: sentiment}}}}
  media: {{modalities: T}}
runs:
  - name: oracle
    model: {{backend: scripted, options: {{rule: table, answers: {{sounds positive: positive, sounds negative: negative, sounds neutral: neutral}}}}}}
  - name: always-positive
    model: {{backend: scripted, name: constant, options: {{rule: constant, default: "The answer is positive."}}}}
"""


def test_run_ls_report_export_rescore(tmp_path):
    root = write_manifest(tmp_path / "data", 24)
    ws = tmp_path / "ws"
    exp = tmp_path / "exp.yaml"
    exp.write_text(EXP.format(ws=ws, root=root))
    cli = CliRunner()

    r = cli.invoke(app, ["run", str(exp), "--dry-run"])
    assert r.exit_code == 0 and r.output.count("eval-manifest-") == 2

    r = cli.invoke(app, ["run", str(exp), "--no-progress"])
    assert r.exit_code == 0, r.output
    assert r.output.count("unread 0.0%") == 2  # the per-run summary of unread reasons
    store = Store(ws / "affectbench.sqlite")
    accs = sorted(run.metrics["acc"] for run in store.runs())
    assert accs == [round(8 / 24, 4), 1.0]

    r = cli.invoke(app, ["ls", "runs", "--workspace", str(ws)])
    assert r.exit_code == 0 and r.output.count("24 predictions") == 2

    out = tmp_path / "report"
    r = cli.invoke(app, ["report", "--workspace", str(ws), "--out", str(out), "--format", "md,csv,latex"])
    assert r.exit_code == 0, r.output
    md = next(out.glob("*.md")).read_text()
    assert "1.0000" in md or "100.0" in md  # the oracle's score is in the leaderboard
    assert list(out.glob("*.tex")) and list(out.glob("*.csv"))

    r = cli.invoke(app, ["export", "--workspace", str(ws), "--out", str(tmp_path / "exp"), "--format", "jsonl"])
    assert r.exit_code == 0
    rid = store.runs()[0].id
    rows = [json.loads(line) for line in (tmp_path / "exp" / f"{rid}.jsonl").read_text().splitlines()]
    assert len(rows) == 24 and {"sample_id", "raw", "value", "target"} <= set(rows[0])

    r = cli.invoke(app, ["rescore", rid, "--workspace", str(ws)])
    assert r.exit_code == 0 and json.loads(r.output)["_n"] == 24

    r = cli.invoke(app, ["rm", rid, "--workspace", str(ws)])
    assert r.exit_code == 0 and not Store(ws / "affectbench.sqlite").has_run(rid)
    assert len(Store(ws / "affectbench.sqlite").runs()) == 1


def test_ls_registries():
    r = CliRunner().invoke(app, ["ls", "datasets"])
    assert r.exit_code == 0 and "mosi" in r.output and "meld" in r.output
    r = CliRunner().invoke(app, ["ls", "prompts"])
    assert r.exit_code == 0 and "sentiment_score" in r.output and "describe" in r.output
