"""Generative knowledge prompting: quality signals of stored knowledge."""

from __future__ import annotations

from typing import Any

from .store import Store


def knowledge_quality(store: Store, run_id: str) -> dict[str, Any]:
    """Length and empty/refusal rates of a knowledge run's texts."""
    preds = store.predictions(run_id)
    texts = [p.raw or "" for p in preds if p.error is None]
    n = len(texts)
    empty = sum(1 for t in texts if not t.strip())
    return {
        "_n": len(preds),
        "_errors": len(preds) - n,
        "mean_chars": round(sum(len(t) for t in texts) / n, 1) if n else 0.0,
        "empty_rate": round(empty / n, 4) if n else 0.0,
    }
