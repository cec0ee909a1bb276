"""Generative knowledge prompting (GKP), the pure part: assembly and budgets, leak detection, masking.

What reads the store (gathering a run's knowledge, knowledge-run quality) is the engine's knowledge
stage, `affectbench.engine.gather`; the report's knowledge tables are `affectbench.report.knowledge`.
"""

from .assembly import (
    MIN_FINETUNE_COVERAGE,
    TRIM_MARKER,
    SampleKnowledge,
    SourcePiece,
    assemble,
    check_coverage,
    coverage_summary,
    fair_shares,
)
from .leaks import POLARITY_WORDS, answer_matcher, gold_words, is_refusal, label_vocabulary, leak_kind, leaks
from .masking import MASK, apply_leak_policy, mask_labels

__all__ = [
    "MASK",
    "MIN_FINETUNE_COVERAGE",
    "POLARITY_WORDS",
    "TRIM_MARKER",
    "SampleKnowledge",
    "SourcePiece",
    "answer_matcher",
    "apply_leak_policy",
    "assemble",
    "check_coverage",
    "coverage_summary",
    "fair_shares",
    "gold_words",
    "is_refusal",
    "label_vocabulary",
    "leak_kind",
    "leaks",
    "mask_labels",
]
