"""The parser against real model answers: GPT-4o, GPT-4o-mini and GPT-5-nano on MELD, IEMOCAP and
MER, as released in github.com/EmotionConflict/merr-reasoning (commit, path and row per answer in
data/real_answers.jsonl; built by data/make_real_answers.py), each with the value a reader takes.

JSON answers must read exactly as the reader does (the declared `first_emotion`, or unread when it
is not one of the labels). Free-text justifications must never read another label than the reader's
(a reader's "cannot tell" must stay unread); where the text names a dominant and a secondary emotion
without a cue, refusing (`ambiguous`) is allowed — the rules never guess.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectbench.core.types import DatasetInfo, TaskType
from affectbench.prompts import load_prompt

ROWS = [json.loads(line) for line in (Path(__file__).parent / "data" / "real_answers.jsonl").open(encoding="utf-8")]


def _info(labels: list[str]) -> DatasetInfo:
    return DatasetInfo("real", TaskType.CLASSIFICATION, labels=tuple(labels), task_name="emotion")


def test_the_table_is_a_few_hundred_sourced_rows():
    assert len(ROWS) >= 300
    for r in ROWS:
        assert r["repo"] and r["path"] and len(r["commit"]) == 40 and r["answer"].strip()


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['path'].split('/')[-1]}#{r['row']}" for r in ROWS])
def test_real_answer_reads_as_a_reader_does(row):
    info = _info(row["labels"])
    got = load_prompt("default", info).parse(row["answer"], info)
    want = row["reader"]
    if row.get("field") == "justification":
        if want is None:
            assert not got.ok, (got, row["answer"])
        else:
            assert got.value == want or (not got.ok and got.unread == "ambiguous"), (got, row["answer"])
        return
    if want is None:
        assert not got.ok, got
    else:
        assert got.ok and got.value == want, got


def test_free_text_read_rate():
    """Most free-text justifications that a reader can read are read (not only refused)."""
    rows = [r for r in ROWS if r.get("field") == "justification" and r["reader"] is not None]
    read = 0
    for r in rows:
        info = _info(r["labels"])
        read += load_prompt("default", info).parse(r["answer"], info).value == r["reader"]
    assert read / len(rows) >= 0.4, f"{read}/{len(rows)} read"
