"""A refused command changes nothing in the store: every CLI verb that can refuse, on one workspace,
compared row by row (runs, predictions, artefacts, train logs) before and after."""

import csv
import sqlite3

import pytest
from typer.testing import CliRunner

from affectbench.cli import app
from tests.engine.test_cli import EXP as CLI_EXP
from tests.engine.test_runner import write_manifest

# test_cli's experiment plus a score-mode run (for the decision-rule refusals)
EXP = (
    CLI_EXP
    + """  - name: scored
    model: {{backend: scripted, name: scorer, options: {{rule: table, answers: {{sounds positive: positive, sounds negative: negative, sounds neutral: neutral}}}}}}
    generation: {{mode: score, calibration: none}}
"""
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("refusals")
    root = write_manifest(tmp / "data", 9)
    ws = tmp / "ws"
    exp = tmp / "exp.yaml"
    exp.write_text(EXP.format(ws=ws, root=root))
    r = CliRunner().invoke(app, ["run", str(exp), "--no-progress"])
    assert r.exit_code == 0, r.output
    return tmp, ws, exp, root


def snapshot(ws):
    conn = sqlite3.connect(ws / "affectbench.sqlite")
    try:
        return {
            t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}").fetchall()))
            for t in ("runs", "predictions", "artifacts", "train_logs")
        }
    finally:
        conn.close()


def _run_ids(ws):
    conn = sqlite3.connect(ws / "affectbench.sqlite")
    try:
        return dict(conn.execute("SELECT json_extract(spec, '$.model.name'), id FROM runs").fetchall())
    finally:
        conn.close()


def _bad_yaml(tmp, exp):
    bad = tmp / "bad.yaml"
    bad.write_text(exp.read_text().replace("media:", "medias:"))
    return str(bad)


def _relabelled(tmp, root, exp):
    """The same experiment on a copy whose labels differ: resuming is refused."""
    copy = write_manifest(tmp / "copy", 9)
    rows = list(csv.reader((copy / "manifest.csv").open()))
    rows[1][2] = "positive" if rows[1][2] != "positive" else "negative"
    with (copy / "manifest.csv").open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    other = tmp / "relabelled.yaml"
    other.write_text(exp.read_text().replace(str(root), str(copy)))
    return str(other)


def _duplicated(tmp, exp, root):
    dup = write_manifest(tmp / "dup", 9)
    with (dup / "manifest.csv").open("a", newline="") as f:
        csv.writer(f).writerow(["s0001", "utterance 1 again sounds neutral", "neutral", "test", "g0"])
    other = tmp / "dup.yaml"
    other.write_text(exp.read_text().replace(str(root), str(dup)))
    return str(other)


# (name, argv builder): each is refused (non-zero exit) and must leave the store as it was
REFUSALS = {
    "run: unknown --only name": lambda t, ws, exp, root, ids: ["run", str(exp), "--only", "nosuch"],
    "run: unknown key in the experiment": lambda t, ws, exp, root, ids: ["run", _bad_yaml(t, exp)],
    "run: label files changed (resume refused)": lambda t, ws, exp, root, ids: [
        "run",
        _relabelled(t, root, exp),
        "--no-progress",
    ],
    "run: repeated sample id": lambda t, ws, exp, root, ids: ["run", _duplicated(t, exp, root), "--no-progress"],
    "rescore: unknown run": lambda t, ws, exp, root, ids: ["rescore", "eval-nosuch", "--workspace", str(ws)],
    "rescore: unknown decision rule": lambda t, ws, exp, root, ids: [
        "rescore",
        ids["scorer"],
        "--workspace",
        str(ws),
        "--decision",
        "median",
    ],
    "rescore: decision expected on a label run": lambda t, ws, exp, root, ids: [
        "rescore",
        ids["scorer"],
        "--workspace",
        str(ws),
        "--decision",
        "expected",
    ],
    "rm: one unknown id among known ones": lambda t, ws, exp, root, ids: [
        "rm",
        ids[""],
        "eval-nosuch",
        "--workspace",
        str(ws),
    ],
    "report: unknown format": lambda t, ws, exp, root, ids: [
        "report",
        "--workspace",
        str(ws),
        "--format",
        "pdf",
        "--out",
        str(t / "rep"),
        "--no-props",
    ],
    "export: unknown run": lambda t, ws, exp, root, ids: [
        "export",
        "eval-nosuch",
        "--workspace",
        str(ws),
        "--out",
        str(t / "exp"),
    ],
    "export: training pairs of no run": lambda t, ws, exp, root, ids: [
        "export",
        "--workspace",
        str(ws),
        "--format",
        "swift",
        "--out",
        str(t / "exp"),
    ],
    "data check: unknown dataset": lambda t, ws, exp, root, ids: ["data", "check", "nosuch", "--root", str(root)],
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_command_changes_nothing_in_the_store(workspace, case):
    tmp, ws, exp, root = workspace
    ids = _run_ids(ws)
    before = snapshot(ws)
    r = CliRunner().invoke(app, REFUSALS[case](tmp, ws, exp, root, ids))
    assert r.exit_code != 0, r.output
    assert snapshot(ws) == before
