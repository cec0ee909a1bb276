"""Entry for the data-parallel test: runs `python -m affectbench.finetune` (its real `main`) with two spies.

Spies (test doubles that only record, then call the real code), written per rank under $SPY_DIR:
- seen-<rank>.txt: the sample ids each rank's data collator encoded (SFT pairs or readout items);
- writes-<rank>.txt: every data-changing SQL statement (INSERT/UPDATE/DELETE/REPLACE) the rank sent to the store.
"""

from __future__ import annotations

import atexit
import os
import sys
from pathlib import Path

from affectbench.engine.store import Store
from affectbench.finetune import lora, readout
from affectbench.finetune.__main__ import main

SPY = Path(os.environ["SPY_DIR"])
RANK = os.environ.get("RANK", "0")
WRITES: list[str] = []
_real_call = lora.PairCollator.__call__
_real_head_call = readout._HeadCollator.__call__
_real_conn = Store._conn
_traced: set[int] = set()


def _seen(self, pairs):
    with open(SPY / f"seen-{RANK}.txt", "a") as f:
        f.write("".join(p.sample.id + "\n" for p in pairs))
    return _real_call(self, pairs)


def _seen_items(self, items):
    with open(SPY / f"seen-{RANK}.txt", "a") as f:
        f.write("".join(it.sample.id + "\n" for it in items))
    return _real_head_call(self, items)


def _conn(self):
    conn = _real_conn(self)
    if id(conn) not in _traced:
        _traced.add(id(conn))
        conn.set_trace_callback(
            lambda sql: (
                WRITES.append(sql)
                if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))
                else None
            )
        )
    return conn


lora.PairCollator.__call__ = _seen
readout._HeadCollator.__call__ = _seen_items
Store._conn = _conn
atexit.register(lambda: (SPY / f"writes-{RANK}.txt").write_text("".join(w + "\n" for w in WRITES)))

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
