"""Per-clip JSON cache of expert outputs, keyed by (clip content hash, span, expert, settings)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

_HASHES: dict[tuple[str, int, int], str] = {}


def content_hash(path: str | Path) -> str:
    """sha256 of the file's bytes (memoised on path, size and mtime)."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]


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
