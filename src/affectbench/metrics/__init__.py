"""Metrics: MMSA-exact sentiment suites, classification scores, MER-UniBench's binary view,
bootstrap intervals and paired tests. numpy only; see each module's docstring for the
definitions and for how None/NaN/constant inputs are handled.
"""

from __future__ import annotations

from ._common import MetricInputError
from .additive import AdditiveMetric
from .bootstrap import CI, PairedResult, bootstrap_ci, paired_bootstrap
from .classification import classification_scores, confusion_matrix
from .mer import MER_BINARY_KEY, mer_binary_scores, mer_binary_waf
from .mmsa import MOSI_KEYS, SIMS_KEYS, mmsa_scores, mosi_scores, sims_scores
from .permutation import PermutationResult, holm, paired_permutation
from .suite import primary_metric, suite_values

__all__ = [
    "CI",
    "MER_BINARY_KEY",
    "MOSI_KEYS",
    "SIMS_KEYS",
    "AdditiveMetric",
    "MetricInputError",
    "PairedResult",
    "PermutationResult",
    "bootstrap_ci",
    "classification_scores",
    "confusion_matrix",
    "mer_binary_scores",
    "mer_binary_waf",
    "mmsa_scores",
    "mosi_scores",
    "paired_bootstrap",
    "paired_permutation",
    "holm",
    "primary_metric",
    "suite_values",
    "sims_scores",
]
