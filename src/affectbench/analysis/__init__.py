"""What drives performance: model cards, dataset properties, modality ablations, correlations,
gains over a baseline and error analysis — all read from the store (no torch, no models)."""

from .ablation import AblationScore, MarginalRow, modality_ablation
from .correlate import Correlation, PerfRow, correlations, performance_rows, stratified
from .dataset_props import (
    DatasetProperties,
    agreement_strata,
    dataset_properties,
    duration_strata,
    unimodal_agreement,
)
from .errors import confusion, hardest_samples, parse_failures
from .gains import GainRow, apply_holm, compare_runs, gains_markdown
from .model_cards import ModelCard, builtin_cards, card_for, load_cards
from .runs import higher_is_better, info_from_run
from .stats import Interval, spearman, spearman_ci

__all__ = [
    "AblationScore",
    "Correlation",
    "DatasetProperties",
    "GainRow",
    "Interval",
    "MarginalRow",
    "ModelCard",
    "PerfRow",
    "agreement_strata",
    "builtin_cards",
    "card_for",
    "apply_holm",
    "compare_runs",
    "confusion",
    "correlations",
    "dataset_properties",
    "duration_strata",
    "gains_markdown",
    "hardest_samples",
    "higher_is_better",
    "info_from_run",
    "load_cards",
    "modality_ablation",
    "parse_failures",
    "performance_rows",
    "spearman",
    "spearman_ci",
    "stratified",
    "unimodal_agreement",
]
