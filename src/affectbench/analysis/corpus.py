"""Corpus identity: what a number was measured on, so that every table, gain and analysis compares
like with like.

The *adapter* (`RunSpec.dataset.name`, e.g. "manifest" or "mustard") is the code that read the data;
the *corpus* is what was measured. Two runs measured the same corpus only when they agree on
- the adapter,
- the corpus name (`DatasetInfo.corpus`, stored as `metrics["_info"]["name"]`),
- the task (task name and label space, or the score scale),
- the split scheme: the split, the adapter's options except `fold` (the folds of one scheme are one
  corpus: their mean is a leaderboard cell) and the scheme the adapter resolved and recorded
  (`env["data"]["scheme"]`, e.g. MUStARD's stratified folds vs its speaker-independent split),
- the dataset version (`dataset.version`, when set), and
- the fingerprint of the label files the adapter read (`env["data"]["files"]`, see
  `engine.provenance.data_record`): a second copy with other labels is another corpus.
Run ids do not change: the identity is read from what every run already records. A run recorded without
label-file fingerprints has the fingerprint "unrecorded", equal only to another unrecorded one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..core.errors import AffectbenchError
from ..core.specs import canonical_json
from ..engine.store import RunRecord
from .runs import info_from_run, spec_without

UNRECORDED = "unrecorded"
SCHEME_FREE_OPTIONS = ("fold",)  # options that pick a part of one split scheme, not another scheme

_FIELDS = (
    ("adapter", "dataset adapter"),
    ("name", "corpus name"),
    ("task", "task"),
    ("scheme", "split scheme"),
    ("version", "dataset version"),
    ("labels", "label files"),
)


@dataclass(frozen=True, order=True)
class Corpus:
    """The identity of what a run measured (see the module docstring); `labels` is a 12-hex fingerprint
    of the label files, or "unrecorded"."""

    adapter: str
    name: str
    task: str
    scheme: str
    labels: str
    version: str = ""

    @property
    def key(self) -> str:
        """A canonical string: equal for two runs exactly when their corpora are the same."""
        return canonical_json([self.adapter, self.name, self.task, self.scheme, self.version, self.labels])

    @property
    def title(self) -> str:
        """A short column title: the corpus name, with the adapter when it differs ("news (manifest)")."""
        base = self.name if self.name == self.adapter else f"{self.name} ({self.adapter})"
        return f"{base} v{self.version}" if self.version else base

    def describe(self) -> str:
        """Every part of the identity in words, for the report's corpora table."""
        parts = [f"corpus {self.name}", f"adapter {self.adapter}", self.task, f"split scheme: {self.scheme}"]
        if self.version:
            parts.append(f"version {self.version}")
        parts.append(f"label files {self.labels}")
        return "; ".join(parts)


_MEMO: dict[tuple[str, float, float], Corpus] = {}  # (id, created, updated) -> identity: tables ask often


def corpus_of(run: RunRecord) -> Corpus:
    """The corpus identity of a scored run (needs `metrics["_info"]`, as every analysis does)."""
    key = (run.id, run.created_at, run.updated_at)
    hit = _MEMO.get(key)
    if hit is None:
        if len(_MEMO) > 100_000:
            _MEMO.clear()
        hit = _MEMO[key] = _identity(run)
    return hit


def _identity(run: RunRecord) -> Corpus:
    info = info_from_run(run)
    spec = run.run_spec
    if info.labels:
        task = f"{info.task_name or info.task.value}: {len(info.labels)} classes ({', '.join(info.labels)})"
    else:
        lo, hi = info.score_range or (float("nan"), float("nan"))
        task = f"{info.task_name or info.task.value}: score on [{lo:g}, {hi:g}] ({info.metric_suite})"
    data = (run.env or {}).get("data") or {}
    opts = {k: v for k, v in sorted(spec.dataset.options.items()) if k not in SCHEME_FREE_OPTIONS}
    scheme = spec.split
    extra = [f"{k}={v}" for k, v in opts.items()]
    if data.get("scheme"):
        extra.append(str(data["scheme"]))
    if extra:
        scheme += " (" + ", ".join(extra) + ")"
    files = data.get("files")
    labels = hashlib.sha256(canonical_json(files).encode()).hexdigest()[:12] if files else UNRECORDED
    version = getattr(spec.dataset, "version", None) or ""
    return Corpus(spec.dataset.name, info.corpus, task, scheme, labels, str(version))


def differences(a: Corpus, b: Corpus) -> list[str]:
    """One phrase per part of the identity that differs ("the split scheme differs (x vs y)")."""
    out = []
    for attr, what in _FIELDS:
        va, vb = getattr(a, attr), getattr(b, attr)
        if va != vb:
            if attr == "labels":
                out.append(f"the {what} differ (fingerprint {va} vs {vb}: another copy or version of the corpus)")
            else:
                out.append(f"the {what} differs ({va or 'none'} vs {vb or 'none'})")
    return out


def same_corpus(a: Corpus, b: Corpus) -> bool:
    """Equal identities (an unrecorded label fingerprint equals only another unrecorded one: what
    cannot be checked is not assumed equal)."""
    return a.key == b.key


def require_same_corpus(base: RunRecord, other: RunRecord) -> None:
    """Raise AffectbenchError, saying what differs, unless both runs measured the same corpus."""
    ca, cb = corpus_of(base), corpus_of(other)
    if not same_corpus(ca, cb):
        raise AffectbenchError(
            f"cannot compare run {other.id} with baseline {base.id}: they were not measured on the same corpus; "
            + "; ".join(differences(ca, cb))
            + ". Runs are comparable only when adapter, corpus, task, split scheme, version and label files agree"
        )


def column_titles(corpora: Iterable[Corpus]) -> dict[str, str]:
    """corpus key -> a column title unique among `corpora`: the short title, then (where two share it)
    the split scheme, then the label fingerprint appended."""
    cs = list(dict.fromkeys(corpora))
    titles = {c.key: c.title for c in cs}
    for extra in (lambda c: c.scheme, lambda c: f"labels {c.labels}", lambda c: c.task):
        counts: dict[str, int] = {}
        for c in cs:
            counts[titles[c.key]] = counts.get(titles[c.key], 0) + 1
        for c in cs:
            if counts[titles[c.key]] > 1:
                titles[c.key] = f"{titles[c.key]} [{extra(c)}]"
    return titles


def corpus_key(run: RunRecord) -> str:
    """`corpus_of(run).key`: the grouping key of every table and analysis."""
    return corpus_of(run).key


def group_key(run: RunRecord, *without: str) -> str:
    """What runs must share to be compared: the corpus and the run's identity less the dotted paths
    in `without` (the factors a comparison varies)."""
    return corpus_key(run) + "|" + spec_without(run, *without)


def corpus_table(runs: Sequence[RunRecord]) -> list[list[object]]:
    """One row per corpus of `runs`: column title, corpus, adapter, task, split scheme, version, label
    files fingerprint, number of runs."""
    by_key: dict[str, tuple[Corpus, int]] = {}
    for r in runs:
        c = corpus_of(r)
        by_key[c.key] = (c, by_key.get(c.key, (c, 0))[1] + 1)
    titles = column_titles(c for c, _ in by_key.values())
    return [
        [titles[k], c.name, c.adapter, c.task, c.scheme, c.version or "–", c.labels, n] for k, (c, n) in by_key.items()
    ]


CORPUS_HEADER = ["column", "corpus", "adapter", "task", "split scheme", "version", "label files", "runs"]
CORPUS_NOTE = (
    "Runs share a column, a gain row or an analysis only when they measured the same corpus: same adapter, "
    "corpus name, task, split scheme (split and adapter options; folds of one scheme are one corpus), "
    "dataset version and label-file fingerprint."
)
