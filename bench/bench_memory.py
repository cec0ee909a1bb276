"""Memory: peak RSS of a whole run as the sample count grows (streaming: no whole-dataset lists of
decoded media). Each size runs in a fresh subprocess, so each peak is its own.

- text: scripted backend, 1k -> 50k synthetic samples (engine + store + scoring).
- media: a backend that decodes video+audio in `prepare` (320x240 clips, warm cache), 200 -> 2000
  samples: decoded frames must not accumulate.

The baseline is the same process's RSS right before the run (imports done). What may grow with n
is per-sample metadata (the Sample list a dataset returns, the stored predictions read back for
scoring), reported as KiB per sample.

    .venv/bin/python bench/bench_memory.py [--sizes 1000,10000,50000] [--media-sizes 200,2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _synth import current_rss_mb, make_clips, peak_rss_mb, register, row, timer

from affectbench.core.specs import DatasetRef, ExecSpec, MediaSpec, ModelSpec, RunSpec
from affectbench.engine.runner import run_spec
from affectbench.engine.store import Store


def child(n: int, media: bool, root: Path) -> dict:
    register()
    clips = 8 if media else 0
    if media:
        make_clips(root, clips, 4.0)

    def spec(n: int) -> RunSpec:
        return RunSpec(
            dataset=DatasetRef(name="bench-synth", root=str(root), options={"n": n, "clips": clips}),
            model=ModelSpec(
                backend="bench-decode" if media else "scripted",
                options={"rule": "hash", "choices": ["positive", "negative"], "cache_dir": str(root / "cache")},
            ),
            media=MediaSpec(modalities="TAV" if media else "T"),
        )

    s = spec(n)
    if media:  # warm the cache outside the measured run
        run_spec(spec(clips), Store(root / "warm.sqlite"))
    base = current_rss_mb()
    with timer() as t:
        rec = run_spec(s, Store(root / "db.sqlite"), ExecSpec(batch_size=8))
    assert rec.metrics and rec.metrics["_n"] == n
    return {"n": n, "base": base, "peak": peak_rss_mb(), "s": t.s}


def measure(n: int, media: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(n), "--tmp", tmp] + (["--media"] if media else []),
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(label: str, sizes: list[int], media: bool) -> None:
    print(label)
    first = None
    for n in sizes:
        r = measure(n, media)
        first = first or r
        grow = r["peak"] - r["base"]
        row(
            f"n={n:>6}: peak RSS (baseline before the run {r['base']:.0f} MB)",
            r["peak"],
            "MB",
            f"+{grow:.1f} MB during the run, {r['s']:.1f}s",
        )
    if first and r is not first:
        per = (r["peak"] - first["peak"]) * 1024 / (r["n"] - first["n"])
        ratio = (r["peak"] - r["base"]) / max(first["peak"] - first["base"], 1e-9)
        print(f"  -> {per:.2f} KiB per extra sample; run growth {ratio:.2f}x for {r['n'] / first['n']:.0f}x samples")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--media-sizes", default="200,2000")
    ap.add_argument("--child", type=int)
    ap.add_argument("--tmp")
    ap.add_argument("--media", action="store_true")
    a = ap.parse_args()
    if a.child:
        print(json.dumps(child(a.child, a.media, Path(a.tmp))))
        return
    report("peak RSS, text-only scripted runs", [int(x) for x in a.sizes.split(",")], media=False)
    report("peak RSS, runs that decode 4s 320x240 clips (warm cache)", [int(x) for x in a.media_sizes.split(",")], True)


if __name__ == "__main__":
    main()
