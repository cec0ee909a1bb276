"""The system of record: one SQLite file per workspace (WAL mode).

Runs, predictions (one row per sample per run), train logs and artefact paths. Knowledge is
stored as the predictions of runs of kind `knowledge`. Every write is its own transaction, so
a killed process loses at most the batch it had not yet handed over.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import StoreError
from ..core.specs import RunSpec, canonical_json

SCHEMA_VERSION = 3

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    spec TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'created',
    env TEXT,
    metrics TEXT,
    error TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    sample_id TEXT NOT NULL,
    raw TEXT,
    value TEXT,
    ok INTEGER NOT NULL DEFAULT 0,
    target TEXT,
    grp TEXT,
    latency REAL,
    error TEXT,
    modalities TEXT,
    meta TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, sample_id)
);
CREATE TABLE IF NOT EXISTS train_logs (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    split TEXT NOT NULL,
    epoch REAL,
    loss REAL,
    meta TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, step, split)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, name)
);
"""

# v2: why a prediction is unread (one of types.UNREAD_REASONS, NULL when read) and why its
# generation ended ("stop" | "length" | NULL when the backend cannot tell).
_SCHEMA_V2 = """
ALTER TABLE predictions ADD COLUMN reason TEXT;
ALTER TABLE predictions ADD COLUMN finish_reason TEXT;
"""

# v3: cached hidden-state features (readout probes), one row per (feature set, sample): `key` names
# what the features come from (model, media, pooling; see finetune.readout), `digest` the exact
# rendered input, so a changed prompt or knowledge text is recomputed, never reused.
_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS features (
    key TEXT NOT NULL,
    sample_id TEXT NOT NULL,
    digest TEXT NOT NULL,
    dtype TEXT NOT NULL,
    shape TEXT NOT NULL,
    data BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (key, sample_id)
);
"""

# Migrations from version N-1 to N; index 0 creates the first schema.
MIGRATIONS: list[str] = [_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3]

_PRED_COLUMNS = ", ".join(
    "run_id sample_id raw value ok target grp latency error modalities meta created_at reason finish_reason".split()
)


@dataclass
class Prediction:
    """One stored answer of one run for one sample."""

    sample_id: str
    raw: str | None
    value: str | float | None
    ok: bool
    target: str | float | None = None
    group: str = ""
    latency: float | None = None
    error: str | None = None
    modalities: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None  # why it is unread: one of types.UNREAD_REASONS; None when read
    finish_reason: str | None = None  # "stop" | "length" | None (the backend could not tell)


@dataclass(frozen=True)
class Outcome:
    """What scoring reads of one stored prediction (see `Store.outcomes`)."""

    sample_id: str
    raw: str | None
    value: Any
    ok: bool
    target: Any
    error: str | None
    reason: str | None
    finish_reason: str | None
    has_reasoning: bool  # meta["reasoning"] holds a separate, non-empty reasoning text
    extracted: str | None = None  # the extractor model's answer (parse policy `extractor`), if any
    decided: Any = None  # option scoring's decided value (meta["decided"]): read as is, never re-parsed


@dataclass
class RunRecord:
    id: str
    kind: str
    spec: dict[str, Any]
    status: str
    env: dict[str, Any] | None
    metrics: dict[str, Any] | None
    error: str | None
    created_at: float
    updated_at: float

    @property
    def run_spec(self) -> RunSpec:
        return RunSpec.model_validate(self.spec)


def with_segment(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A run's env after one more segment (a start or resume): the latest segment's fields at the
    top (what readers and resume checks use) and `segments`, every segment in order, so the
    versions used for earlier parts of a resumed run are kept. An env written before segments
    existed becomes the first segment."""
    old = old or {}
    earlier = list(old.get("segments") or ([{k: v for k, v in old.items()}] if old else []))
    seg = {k: v for k, v in new.items() if k != "segments"}
    return {**seg, "segments": [*earlier, seg]}


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes: `mode=ro`, or `immutable=1` where SQLite cannot even create
    the WAL index (a read-only folder); an immutable reader does not see an un-checkpointed WAL."""
    uri = path.resolve().as_uri()
    for flags in ("?mode=ro", "?mode=ro&immutable=1"):
        conn = sqlite3.connect(uri + flags, uri=True, timeout=60, isolation_level=None)
        try:
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            conn.execute("PRAGMA query_only=ON")
            return conn
        except sqlite3.OperationalError:
            conn.close()
    raise StoreError(f"cannot open {path} read-only")


def _set_wal(conn: sqlite3.Connection, path: Path, wait_s: float = 60.0) -> None:
    """Put the database in WAL mode, waiting out other processes doing the same.

    Switching the journal mode needs an exclusive lock, and SQLite answers SQLITE_BUSY at once,
    without calling the busy handler, when processes race to open a fresh file (e.g. the ranks of
    a torchrun job); https://www.sqlite.org/wal.html#persistence: the mode persists in the file,
    so only the first opener switches it. Raises StoreError after `wait_s` seconds of busy."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() > deadline:
                raise StoreError(f"{path}: still locked by another process after {wait_s:.0f} s ({e})") from e
            time.sleep(0.02)


def _dumps(x: Any) -> str | None:
    return None if x is None else json.dumps(x, ensure_ascii=False, allow_nan=True)


def _loads(s: str | None) -> Any:
    return None if s is None else json.loads(s)


class Store:
    """A workspace's database. Safe to share between threads and between processes."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        """Open (and create or migrate) the store at `path`; `read_only` opens an existing file with
        SQLite `mode=ro` (falling back to `immutable=1` on a read-only folder), never writing."""
        self.path = Path(path)
        self.read_only = read_only
        self._local = threading.local()
        if read_only:
            if not self.path.is_file():
                raise StoreError(f"no store at {self.path}")
            self._check_version(self.schema_version)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    @property
    def workspace(self) -> Path:
        return self.path.parent

    # --- connection -------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None and self.read_only:
            conn = self._local.conn = _connect_read_only(self.path)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            _set_wal(conn, self.path)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=60000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this affectbench "
                f"({SCHEMA_VERSION}); upgrade affectbench to read it"
            )

    def _migrate(self) -> None:
        with self._tx() as c:
            version = c.execute("PRAGMA user_version").fetchone()[0]
            self._check_version(version)
            for script in MIGRATIONS[version:]:
                for stmt in script.split(";"):
                    if stmt.strip():
                        c.execute(stmt)
            c.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @property
    def schema_version(self) -> int:
        return self._conn().execute("PRAGMA user_version").fetchone()[0]

    # --- runs ---------------------------------------------------------------------------
    def open_run(self, spec: RunSpec, env: dict[str, Any] | None = None) -> RunRecord:
        """Create the run for `spec`, or return the stored one if it has the same spec."""
        rid = spec.run_id
        spec_json = canonical_json(spec.model_dump(mode="json"))
        now = time.time()
        with self._tx() as c:
            row = c.execute("SELECT spec FROM runs WHERE id=?", (rid,)).fetchone()
            if row is None:
                c.execute(
                    "INSERT INTO runs (id, kind, spec, status, env, created_at, updated_at) VALUES (?,?,?,?,?,?,?)",
                    (rid, spec.kind, spec_json, "created", _dumps(with_segment(None, env) if env else None), now, now),
                )
            else:
                stored = RunSpec.model_validate_json(row[0])
                if canonical_json(stored.identity()) != canonical_json(spec.identity()):
                    raise StoreError(
                        f"run {rid} already exists with a different spec; refusing to mix "
                        f"results (stored: {canonical_json(stored.identity())})"
                    )
                if env is not None:
                    old = c.execute("SELECT env FROM runs WHERE id=?", (rid,)).fetchone()[0]
                    env = with_segment(_loads(old), env)
                    c.execute("UPDATE runs SET env=?, updated_at=? WHERE id=?", (_dumps(env), now, rid))
        return self.run(rid)

    def run(self, run_id: str) -> RunRecord:
        row = self._conn().execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        return self._run_record(row)

    def has_run(self, run_id: str) -> bool:
        return self._conn().execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is not None

    def runs(self, kind: str | None = None) -> list[RunRecord]:
        sql, args = "SELECT * FROM runs", ()
        if kind:
            sql, args = sql + " WHERE kind=?", (kind,)
        return [self._run_record(r) for r in self._conn().execute(sql + " ORDER BY created_at", args)]

    @staticmethod
    def _run_record(row: tuple) -> RunRecord:
        rid, kind, spec, status, env, metrics, error, created, updated = row
        return RunRecord(rid, kind, json.loads(spec), status, _loads(env), _loads(metrics), error, created, updated)

    def set_status(self, run_id: str, status: str, error: str | None = None) -> None:
        with self._tx() as c:
            c.execute(
                "UPDATE runs SET status=?, error=?, updated_at=? WHERE id=?", (status, error, time.time(), run_id)
            )

    def set_metrics(self, run_id: str, metrics: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute("UPDATE runs SET metrics=?, updated_at=? WHERE id=?", (_dumps(metrics), time.time(), run_id))

    def delete_run(self, run_id: str) -> None:
        """Delete a run, its predictions, logs and its artefact folder (`artifacts/<run id>`: adapters,
        checkpoints), so a rerun starts afresh."""
        with self._tx() as c:
            c.execute("DELETE FROM runs WHERE id=?", (run_id,))
        folder = self.workspace / "artifacts" / run_id
        if folder.is_dir():
            shutil.rmtree(folder)

    # --- predictions ----------------------------------------------------------------------
    def add_predictions(self, run_id: str, preds: Iterable[Prediction]) -> int:
        """Store a batch in one transaction; a sample stored again in a later batch replaces its row (a
        retry). Raises StoreError, storing nothing, when the batch itself holds one sample id twice: the
        second answer would silently replace the first."""
        preds = list(preds)
        seen: set[str] = set()
        dup = sorted({p.sample_id for p in preds if p.sample_id in seen or seen.add(p.sample_id)})
        if dup:
            raise StoreError(
                f"run {run_id}: sample id(s) {', '.join(map(repr, dup[:5]))} occur twice in one batch; "
                "ids must be unique, nothing was stored"
            )
        now = time.time()
        rows = [
            (
                run_id,
                p.sample_id,
                p.raw,
                _dumps(p.value),
                int(p.ok),
                _dumps(p.target),
                p.group,
                p.latency,
                p.error,
                _dumps(list(p.modalities)),
                _dumps(p.meta or None),
                now,
                p.reason,
                p.finish_reason,
            )
            for p in preds
        ]
        with self._tx() as c:
            c.executemany(f"INSERT OR REPLACE INTO predictions ({_PRED_COLUMNS}) VALUES ({','.join('?' * 14)})", rows)
        return len(rows)

    def done_ids(self, run_id: str) -> set[str]:
        """Samples with a stored answer that need no retry (rows with an error are retried)."""
        cur = self._conn().execute("SELECT sample_id FROM predictions WHERE run_id=? AND error IS NULL", (run_id,))
        return {r[0] for r in cur}

    def predictions(self, run_id: str) -> list[Prediction]:
        cur = self._conn().execute(
            "SELECT sample_id, raw, value, ok, target, grp, latency, error, modalities, meta, reason, finish_reason "
            "FROM predictions WHERE run_id=? ORDER BY rowid",
            (run_id,),
        )
        return [
            Prediction(
                sid,
                raw,
                _loads(v),
                bool(ok),
                _loads(t),
                g or "",
                lat,
                err,
                tuple(_loads(m) or ()),
                _loads(meta) or {},
                reason,
                fin,
            )
            for sid, raw, v, ok, t, g, lat, err, m, meta, reason, fin in cur
        ]

    def outcomes(self, run_id: str) -> Iterator[Outcome]:
        """One `Outcome` per prediction, streamed: what scoring needs."""
        cur = self._conn().execute(
            "SELECT sample_id, raw, value, ok, target, error, reason, finish_reason, "
            # meta is parsed only when it may hold a reasoning text or an extractor's answer
            "CASE WHEN instr(meta, '\"reasoning\"') > 0 OR instr(meta, '\"extractor\"') > 0 "
            "OR instr(meta, '\"decided\"') > 0 THEN meta END "
            "FROM predictions WHERE run_id=? ORDER BY rowid",
            (run_id,),
        )
        for sid, raw, v, ok, t, err, reason, fin, meta in cur:
            m = (_loads(meta) or {}) if meta else {}
            ext = m.get("extractor")
            extracted = ext.get("answer") if isinstance(ext, dict) else None
            yield Outcome(
                sid, raw, _loads(v), bool(ok), _loads(t), err, reason, fin, bool(m.get("reasoning")), extracted,
                m.get("decided"),
            )  # fmt: skip

    def reason_counts(self, run_id: str) -> dict[str, int]:
        """Number of unread predictions per reason (types.UNREAD_REASONS) of one run."""
        cur = self._conn().execute(
            "SELECT reason, COUNT(*) FROM predictions WHERE run_id=? AND reason IS NOT NULL GROUP BY reason", (run_id,)
        )
        return dict(cur.fetchall())

    def count_predictions(self, run_id: str) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM predictions WHERE run_id=?", (run_id,)).fetchone()[0]

    def count_meta(self, run_id: str, key: str) -> int:
        """How many of the run's predictions carry `key` in their meta (e.g. "audio_truncated")."""
        # a text match, not json_extract: meta may hold -Infinity scores, which SQLite's JSON rejects
        sql = "SELECT COUNT(*) FROM predictions WHERE run_id=? AND meta LIKE ?"
        return self._conn().execute(sql, (run_id, f'%"{key}":%')).fetchone()[0]

    def update_parsed(self, run_id: str, values: Iterable[tuple[str, Any, bool, str | None]]) -> None:
        """Replace parsed values and unread reasons, (sample_id, value, ok, reason) each (used by
        `rescore`), leaving raw outputs untouched."""
        with self._tx() as c:
            c.executemany(
                "UPDATE predictions SET value=?, ok=?, reason=? WHERE run_id=? AND sample_id=?",
                [(_dumps(v), int(ok), reason, run_id, sid) for sid, v, ok, reason in values],
            )

    def knowledge(self, run_id: str) -> dict[str, str]:
        """The knowledge texts of a `knowledge` run, by sample id."""
        cur = self._conn().execute("SELECT sample_id, raw FROM predictions WHERE run_id=? AND error IS NULL", (run_id,))
        return {sid: raw or "" for sid, raw in cur}

    # --- train logs and artefacts -------------------------------------------------------------
    def log_train(
        self, run_id: str, step: int, split: str, loss: float, epoch: float | None = None, **meta: Any
    ) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO train_logs VALUES (?,?,?,?,?,?,?)",
                (run_id, step, split, epoch, loss, _dumps(meta or None), time.time()),
            )

    def train_logs(self, run_id: str, split: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT step, split, epoch, loss, meta FROM train_logs WHERE run_id=?"
        args: tuple = (run_id,)
        if split:
            sql, args = sql + " AND split=?", (run_id, split)
        rows = self._conn().execute(sql + " ORDER BY step", args)
        return [dict(step=s, split=sp, epoch=e, loss=l, **(_loads(m) or {})) for s, sp, e, l, m in rows]

    def set_artifact(self, run_id: str, name: str, path: str | Path) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO artifacts VALUES (?,?,?,?)", (run_id, name, str(path), time.time()))

    def artifact(self, run_id: str, name: str) -> Path | None:
        row = self._conn().execute("SELECT path FROM artifacts WHERE run_id=? AND name=?", (run_id, name)).fetchone()
        return None if row is None else Path(row[0])

    # --- cached features (readout probes) -----------------------------------------------------
    def put_features(self, key: str, rows: Iterable[tuple[str, str, str, tuple[int, ...], bytes]]) -> int:
        """Store (sample_id, digest, dtype, shape, raw bytes) rows of feature set `key` in one transaction
        (a sample stored again replaces its row); returns the number of rows."""
        now = time.time()
        data = [(key, sid, dig, dtype, json.dumps(list(shape)), blob, now) for sid, dig, dtype, shape, blob in rows]
        with self._tx() as c:
            c.executemany("INSERT OR REPLACE INTO features VALUES (?,?,?,?,?,?,?)", data)
        return len(data)

    def features(self, key: str, digests: dict[str, str]) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
        """sample_id → (dtype, shape, raw bytes) of the stored features of set `key` whose digest equals
        `digests[sample_id]` (rows made from another input are left out: the caller recomputes them)."""
        out = {}
        cur = self._conn().execute("SELECT sample_id, digest, dtype, shape, data FROM features WHERE key=?", (key,))
        for sid, dig, dtype, shape, blob in cur:
            if digests.get(sid) == dig:
                out[sid] = (dtype, tuple(json.loads(shape)), bytes(blob))
        return out

    def artifact_dir(self, run_id: str) -> Path:
        d = self.workspace / "artifacts" / run_id
        d.mkdir(parents=True, exist_ok=True)
        return d
