"""Reports from the store: tables (markdown, CSV, LaTeX) and a static HTML page with plots.

Imports only store, metrics and analysis — reading results needs no torch.
"""

from ..analysis.gains import compare_runs, gains_markdown
from ..analysis.runs import info_from_run
from .build import build_report, leaderboard_markdown
from .tables import Table, dataset_tables, leaderboard, to_csv, to_latex, to_markdown

__all__ = [
    "Table",
    "build_report",
    "compare_runs",
    "dataset_tables",
    "gains_markdown",
    "info_from_run",
    "leaderboard",
    "leaderboard_markdown",
    "to_csv",
    "to_latex",
    "to_markdown",
]
