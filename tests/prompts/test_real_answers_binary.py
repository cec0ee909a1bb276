"""The parser against real sarcasm (MUStARD) and humour (UR-FUNNY) answers of Gemini, Qwen3-Omni and
Qwen3-VL-8B (instruct and thinking), as released in github.com/consciousness-lab/ctm-ai (commit, path
and sample id per row in data/real_answers_binary.jsonl; built by data/make_real_answers_binary.py,
whose docstring says how each reader value was taken — never from a parser).

A read answer must be the reader's value; a reader's "cannot tell" must stay unread. Refusing
(`ambiguous`) a readable answer is allowed row by row but bounded by a read rate per kind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectbench.core.types import DatasetInfo, TaskType
from affectbench.prompts import load_prompt

ROWS = [json.loads(x) for x in (Path(__file__).parent / "data" / "real_answers_binary.jsonl").open(encoding="utf-8")]
# Known gaps (strict: the test fails once the parser reads them right). None at present; row 2812
# ("it is impossible to determine if humor was present") read as a mention of humour until the
# parser learnt undecided statements.
KNOWN_GAPS: set[tuple[str, str]] = set()


def _parse(row):
    info = DatasetInfo("real", TaskType.CLASSIFICATION, labels=tuple(row["labels"]), task_name=row["task"])
    return load_prompt("default", info).parse(row["answer"], info)


def _free(row) -> bool:
    return row["path"].startswith("exp_affective/ctm_")


def test_the_table_is_sourced_and_covers_both_tasks_and_models():
    assert len(ROWS) >= 150
    for r in ROWS:
        assert r["repo"] and r["path"] and len(r["commit"]) == 40 and r["answer"].strip() and r["row"]
    assert {r["task"] for r in ROWS} == {"sarcasm", "humour"}
    assert {"gemini", "qwen3-omni", "qwen3-vl-8b-thinking"} <= {r["model"] for r in ROWS}
    assert {r["reader"] for r in ROWS} >= {"sincere", "sarcastic", "not humorous", "humorous", None}


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(r, marks=pytest.mark.xfail(strict=True, reason="undetermined statement"))
        if (r["path"], r["row"]) in KNOWN_GAPS
        else r
        for r in ROWS
    ],
    ids=[f"{r['path'].split('/')[-1]}#{r['row']}" for r in ROWS],
)
def test_real_answer_never_reads_another_value(row):
    got = _parse(row)
    if row["reader"] is None:
        assert not got.ok, (got, row["answer"][:200])
    else:
        assert got.value == row["reader"] or (not got.ok and got.unread == "ambiguous"), (got, row["answer"][:200])


@pytest.mark.parametrize(("free", "floor"), [(False, 0.95), (True, 0.6)], ids=["verdict_first", "free_text"])
def test_read_rate(free, floor):
    rows = [r for r in ROWS if _free(r) == free and r["reader"] is not None]
    read = sum(_parse(r).value == r["reader"] for r in rows)
    assert read / len(rows) >= floor, f"{read}/{len(rows)} read"
