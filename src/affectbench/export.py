"""Flat-file export of runs and predictions (JSONL or CSV)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

from .errors import AffectbenchError
from .store import Store


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
            f.write(
                json.dumps(
                    {"id": r.id, "kind": r.kind, "status": r.status, "spec": r.spec, "metrics": r.metrics, "env": r.env}
                )
                + "\n"
            )
            rows = [asdict(p) for p in store.predictions(rid)]
            path = out / f"{rid}.{fmt}"
            with path.open("w", newline="") as pf:
                if fmt == "jsonl":
                    for row in rows:
                        pf.write(json.dumps(row, ensure_ascii=False) + "\n")
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
                    ]
                    w = csv.DictWriter(pf, fieldnames=fields)
                    w.writeheader()
                    for row in rows:
                        row["modalities"] = "".join(row["modalities"])
                        row["meta"] = json.dumps(row["meta"], ensure_ascii=False)
                        w.writerow(row)
            written.append(path)
    return [runs_path, *written]
