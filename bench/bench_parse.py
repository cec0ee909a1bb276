"""Answers parsed per second by the rules parser, this tree's against the parser before issue 21, in
the same process.

Run: PYTHONPATH=src .venv/bin/python bench/bench_parse.py [BASELINE_COMMIT]
The answers are the real-answer table (tests/prompts/data/real_answers.jsonl: GPT-4o/4o-mini/5-nano
on MELD, IEMOCAP, MER) repeated to 100k. The baseline is `prompts/parsing.py` as it was at
BASELINE_COMMIT (default 65a2cac, the tree issue 21 started from), read with `git show` and loaded as
a module next to the package; both parse the same answers with the same label sets and synonyms.
Prints answers/s for each, the ratio (issue 21 allows at most 2x), and how many of the table's
answers each reads as the reader does.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

from affectbench.core.types import DatasetInfo, TaskType
from affectbench.prompts import load_prompt
from affectbench.prompts import parsing as current

ROOT = Path(__file__).resolve().parent.parent
N = 100_000


def baseline_module(commit: str):
    src = subprocess.check_output(["git", "-C", str(ROOT), "show", f"{commit}:src/affectbench/prompts/parsing.py"], text=True)
    name = "affectbench.prompts._parsing_baseline"
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "affectbench.prompts"
    sys.modules[name] = mod
    exec(compile(src, f"{commit}:parsing.py", "exec"), mod.__dict__)
    return mod


def matchers(module, rows):
    out = {}
    for r in rows:
        key = tuple(r["labels"])
        if key not in out:
            info = DatasetInfo("bench", TaskType.CLASSIFICATION, labels=key, task_name="emotion")
            p = load_prompt("default", info).spec.parse
            out[key] = module.LabelMatcher.build(key, p.synonyms, p.negations, p.yes_no, p.json_keys)
    return out


def rate(module, rows, n: int) -> tuple[float, int]:
    ms = matchers(module, rows)
    work = [(r["answer"], ms[tuple(r["labels"])]) for r in rows]
    work = (work * (n // len(work) + 1))[:n]
    start = time.perf_counter()
    for text, m in work:
        module.parse_label(text, m)
    secs = time.perf_counter() - start
    agree = sum(
        module.parse_label(r["answer"], ms[tuple(r["labels"])]).value == r["reader"]
        and (r["reader"] is None or module.parse_label(r["answer"], ms[tuple(r["labels"])]).ok)
        for r in rows
    )
    return n / secs, agree


def main(commit: str = "65a2cac") -> None:
    rows = [json.loads(x) for x in (ROOT / "tests/prompts/data/real_answers.jsonl").open(encoding="utf-8")]
    base = baseline_module(commit)
    before, agree_before = rate(base, rows, N)
    after, agree_after = rate(current, rows, N)
    print(f"real-answer table: {len(rows)} answers, repeated to {N:,}")
    print(f"before ({commit}): {before:10,.0f} answers/s   reads {agree_before}/{len(rows)} as the reader")
    print(f"after (this tree): {after:10,.0f} answers/s   reads {agree_after}/{len(rows)} as the reader")
    print(f"cost ratio (before/after time): {before / after:.2f}x  (limit 2x)  -> a 100k rescore parses in {N / after:.1f} s")
    free = [r for r in rows if r.get("field") == "justification"]  # free text only: where negation scopes run
    fb, _ = rate(base, free, N // 4)
    fa, _ = rate(current, free, N // 4)
    print(f"free text only ({len(free)} answers to {N // 4:,}): before {fb:,.0f}/s, after {fa:,.0f}/s, ratio {fb / fa:.2f}x")


if __name__ == "__main__":
    main(*sys.argv[1:2])
