"""Per-clip JSON cache of expert outputs, keyed by (clip content hash, span, expert, settings)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def default_dir() -> Path:
    env = os.environ.get("AFFECTBENCH_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "affectbench"
    return base / "perception"


def key(clip_hash: str, span: tuple[float, float] | None, expert: str, settings: dict[str, Any]) -> str:
    blob = json.dumps([clip_hash, list(span) if span else None, expert, settings], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def read(cache_dir: Path, k: str) -> dict[str, Any] | None:
    f = cache_dir / k[:2] / f"{k}.json"
    if not f.is_file():
        return None
    try:
        return json.loads(f.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # a torn write: recompute


def write(cache_dir: Path, k: str, value: dict[str, Any]) -> None:
    f = cache_dir / k[:2] / f"{k}.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, sort_keys=True))
    os.replace(tmp, f)
