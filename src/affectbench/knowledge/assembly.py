"""Knowledge assembly: the knowledge block of one sample from its sources, under the prompt's budget.

Each referenced source gets a fair share of the prompt's knowledge budget (max-min: a short source
leaves its unused share to the others), is cut at a sentence end when longer, marked `TRIM_MARKER`
where cut, and labelled with its writer when there are several. Per sample `SampleKnowledge.facts`
records which sources were present, their characters in the prompt, whether they were trimmed, and
the modalities the knowledge was made from (stored in each eval prediction's meta under
"knowledge"). `coverage_summary` turns those into a run's per-source coverage; `check_coverage` is
the gate a fine-tune on knowledge prompts calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import AffectbenchError

TRIM_MARKER = "[… cut at a sentence end to this source's share of the knowledge space]"


MIN_FINETUNE_COVERAGE = 0.95  # share of training samples every knowledge source must reach


@dataclass
class SourcePiece:
    """One knowledge source's part in one sample's prompt.

    `status`: "ok" (in the prompt), "missing" (no stored text for the sample), "error" (the
    writer failed on it), "empty", "refusal" or "dropped" (the drop policy: it stated the answer).
    `chars` counts the characters that reached the prompt (0 unless ok), `raw_chars` the stored text's.
    """

    source: str
    status: str
    chars: int = 0
    raw_chars: int = 0
    trimmed: bool = False
    modalities: tuple[str, ...] = ()


@dataclass
class SampleKnowledge:
    """The knowledge block of one sample (None when no source reached it) and how it was made."""

    text: str | None
    sources: list[SourcePiece] = field(default_factory=list)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modalities that reached the prompt through knowledge (union over the sources present)."""
        got = {m for p in self.sources if p.status == "ok" for m in p.modalities}
        return tuple(m for m in ("T", "A", "V") if m in got)

    def facts(self) -> dict[str, Any]:
        """Plain data for a prediction's meta["knowledge"]."""
        return {
            "modalities": list(self.modalities),
            "chars": len(self.text or ""),
            "sources": {
                p.source: {"status": p.status, "chars": p.chars, "raw_chars": p.raw_chars, "trimmed": p.trimmed}
                for p in self.sources
            },
        }


def fair_shares(lengths: Sequence[int], budget: int) -> list[int]:
    """Max-min fair split of `budget` characters over sources of `lengths`: each gets at most its length,
    no source gets less than another unless it needs less (water-filling)."""
    shares = [0] * len(lengths)
    left, todo = budget, sorted(range(len(lengths)), key=lambda i: lengths[i])
    while todo:
        each = left // len(todo)
        i = todo[0]
        if lengths[i] <= each:
            shares[i] = lengths[i]
            left -= lengths[i]
            todo.pop(0)
        else:
            for j in todo:
                shares[j] = each
            break
    return shares


def assemble(
    pieces: Sequence[tuple[str, str]], budget: int, labels: bool | None = None
) -> tuple[str, list[tuple[int, bool]]]:
    """Join (label, text) pieces into one knowledge block of at most `budget` characters.

    Each piece gets its fair share (`fair_shares`) and is cut at a sentence end with `TRIM_MARKER`
    when longer. With several pieces (or `labels=True`) each starts on its own line as
    "[source i/n: label] text". Returns the block and, per piece, (characters it holds, whether it was cut).
    """
    from ..prompts import trim_knowledge

    labels = len(pieces) > 1 if labels is None else labels
    n = len(pieces)
    heads = [f"[source {i}/{n}: {lab}] " if labels else "" for i, (lab, _) in enumerate(pieces, 1)]
    overhead = sum(len(h) for h in heads) + max(0, len(pieces) - 1)  # heads and newlines
    texts = [t.strip() for _, t in pieces]
    shares = fair_shares([len(t) for t in texts], max(0, budget - overhead))
    out, stats = [], []
    for head, text, share in zip(heads, texts, shares, strict=True):
        cut = trim_knowledge(text, share, TRIM_MARKER) if len(text) > share else text
        out.append(head + cut)
        stats.append((len(cut), len(text) > share))
    return "\n".join(out), stats


def coverage_summary(facts: Sequence[Mapping[str, Any]], sources: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per source: `coverage` (share of samples whose prompt got its text), `trimmed_rate` (share of those
    cut), `mean_chars` (characters in the prompt, over covered samples), and the share of samples whose
    text was `missing`, `empty`, a `refusal`, `dropped` or an `error`. `facts` are meta["knowledge"] dicts."""
    n = len(facts)
    out: dict[str, dict[str, float]] = {}
    for src in sources:
        rows = [f.get("sources", {}).get(src, {"status": "missing"}) for f in facts]
        ok = [r for r in rows if r.get("status") == "ok"]
        d: dict[str, float] = {
            "coverage": round(len(ok) / n, 4) if n else 0.0,
            "trimmed_rate": round(sum(bool(r.get("trimmed")) for r in ok) / len(ok), 4) if ok else 0.0,
            "mean_chars": round(sum(r.get("chars", 0) for r in ok) / len(ok), 1) if ok else 0.0,
        }
        for status in ("missing", "empty", "refusal", "dropped", "error"):
            d[f"{status}_rate"] = round(sum(r.get("status") == status for r in rows) / n, 4) if n else 0.0
        out[src] = d
    return out


def check_coverage(
    knowledge: Mapping[str, SampleKnowledge],
    sample_ids: Sequence[str],
    sources: Sequence[str],
    threshold: float = MIN_FINETUNE_COVERAGE,
    what: str = "fine-tune",
) -> dict[str, dict[str, float]]:
    """Refuse (AffectbenchError) when any source reaches the prompts of fewer than `threshold` of
    `sample_ids`; returns the coverage summary otherwise. Used before training on knowledge prompts."""
    facts = [(knowledge.get(sid) or SampleKnowledge(None, [])).facts() for sid in sample_ids]
    summary = coverage_summary(facts, sources)
    low = {s: d["coverage"] for s, d in summary.items() if d["coverage"] < threshold}
    if low:
        detail = ", ".join(f"{s}: {c:.0%}" for s, c in low.items())
        raise AffectbenchError(
            f"{what}: knowledge reaches too few of its {len(sample_ids)} samples ({detail}; at least "
            f"{threshold:.0%} needed per source). Run the knowledge runs on this split, or check their empty "
            "and refusal rates"
        )
    return summary
