"""A small labelled manifest corpus (train/valid/test) for fine-tuning and knowledge tests."""

from __future__ import annotations

import json
from pathlib import Path

WORDS = {
    "positive": ["great", "wonderful", "happy", "love", "excellent", "nice"],
    "negative": ["awful", "terrible", "sad", "hate", "horrible", "bad"],
}


def write_corpus(root: Path, n_per_split: dict[str, int] | None = None, media: dict[str, str] | None = None) -> Path:
    """manifest.jsonl with alternating positive/negative utterances; `media` adds video/audio paths to each row."""
    n_per_split = n_per_split or {"train": 16, "valid": 6, "test": 8}
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, n in n_per_split.items():
        for i in range(n):
            label = "positive" if i % 2 == 0 else "negative"
            word = WORDS[label][i % len(WORDS[label])]
            row = {"id": f"{split}{i:03d}", "label": label, "transcript": f"This is {word}.", "split": split}
            row.update(media or {})
            rows.append(row)
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def dataset_ref(root: Path) -> dict:
    return {
        "name": "manifest",
        "root": str(root),
        "options": {"task": "classification", "labels": ["negative", "positive"], "task_name": "sentiment"},
    }


# answers of very different lengths (1 word vs a long phrase): token-weighted and per-batch means differ
UNEVEN_LABELS = ["no", "yes, without the slightest doubt, wholeheartedly and absolutely yes"]


def write_uneven_corpus(root: Path, n_per_split: dict[str, int]) -> dict:
    """A manifest whose two labels have answers of very different token lengths; returns its dataset ref."""
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, n in n_per_split.items():
        for i in range(n):
            label = UNEVEN_LABELS[i % 2]
            text = f"Sample {i} says {'great' if i % 2 else 'awful'} things" + " indeed" * (i % 3)
            rows.append({"id": f"{split}{i:03d}", "label": label, "transcript": text, "split": split})
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return {
        "name": "manifest",
        "root": str(root),
        "options": {"task": "classification", "labels": UNEVEN_LABELS, "task_name": "agreement"},
    }
