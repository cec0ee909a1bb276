"""Flat-file export of runs and predictions (JSONL or CSV). Always valid JSON: a non-finite number
(an undefined Corr, a -inf option score) is written as null; `metrics._undefined` says why."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from ..core.errors import AffectbenchError
from ..engine.scoring import json_safe
from ..engine.store import Store


def export_runs(store: Store, run_ids: Iterable[str], out: Path, fmt: str = "jsonl") -> list[Path]:
    """Write `runs.jsonl` and one predictions file per run into `out`."""
    if fmt not in ("jsonl", "csv"):
        raise AffectbenchError(f"export format must be jsonl or csv, not {fmt!r}")
    out.mkdir(parents=True, exist_ok=True)
    written = []
    runs_path = out / "runs.jsonl"
    with runs_path.open("w") as f:
        for rid in run_ids:
            r = store.run(rid)
            metrics = dict(r.metrics) if r.metrics else r.metrics
            if metrics:
                bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
                undefined = dict(metrics.get("_undefined") or {})
                for k in bad:
                    undefined.setdefault(
                        k, "not a finite number (scored by an older affectbench; rescore for the reason)"
                    )
                if undefined:
                    metrics["_undefined"] = undefined
            run_row = {
                "id": r.id, "kind": r.kind, "status": r.status, "error": r.error,
                "spec": r.spec, "metrics": metrics, "env": r.env,
            }  # fmt: skip
            f.write(json.dumps(json_safe(run_row), allow_nan=False) + "\n")
            rows = [asdict(p) for p in store.predictions(rid)]
            path = out / f"{rid}.{fmt}"
            with path.open("w", newline="") as pf:
                if fmt == "jsonl":
                    for row in rows:
                        pf.write(json.dumps(json_safe(row), ensure_ascii=False, allow_nan=False) + "\n")
                else:
                    fields = [
                        "sample_id",
                        "raw",
                        "value",
                        "ok",
                        "target",
                        "group",
                        "latency",
                        "error",
                        "modalities",
                        "meta",
                        "reason",
                        "finish_reason",
                    ]
                    w = csv.DictWriter(pf, fieldnames=fields)
                    w.writeheader()
                    for row in rows:
                        row["modalities"] = "".join(row["modalities"])
                        row["meta"] = json.dumps(json_safe(row["meta"]), ensure_ascii=False, allow_nan=False)
                        w.writerow(row)
            written.append(path)
    return [runs_path, *written]
