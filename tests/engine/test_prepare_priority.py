"""exec.prepare_nice: the prepare (decode) workers run below the model's CPU priority, per thread, and the
model's thread and the caller keep theirs. The reference is the kernel's own record of each thread's nice
value, /proc/self/task/<tid>/stat field 19 (proc(5)), not the code under test."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from affectbench.core.specs import ExecSpec, GenerationSpec
from affectbench.core.types import Generation, Message, Part, Sample
from affectbench.engine.execution import Call, LocalExecutor, Task, lower_priority

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is a Linux property")


def kernel_nice(tid: int) -> int:
    """Field 19 of /proc/self/task/<tid>/stat (after the parenthesised command name, which may hold spaces)."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


class NiceRecorder:
    """A test double model: records the nice value of the thread each prepare and each generate ran in."""

    def __init__(self):
        self.prepare_nice, self.model_nice = [], []

    def prepare(self, conv):
        self.prepare_nice.append(kernel_nice(threading.get_native_id()))
        return conv

    def generate(self, batch, gen):
        self.model_nice.append(kernel_nice(threading.get_native_id()))
        return [Generation(text="ok") for _ in batch]


def tasks(n):
    return [
        Task(Sample(id=f"s{i}", transcript="", target=None), [Message("user", [Part.of_text("x")])]) for i in range(n)
    ]


@pytest.mark.parametrize("nice", [0, 3, 10])
def test_prepare_workers_run_below_the_model(nice):
    base = kernel_nice(threading.get_native_id())
    model = NiceRecorder()
    ex = LocalExecutor(model, ExecSpec(batch_size=2, workers=2, prefetch=2, prepare_nice=nice))
    out = [t for batch in ex.answer(iter(tasks(7)), Call(GenerationSpec())) for t in batch]
    assert [t.sample.id for t in out] == [f"s{i}" for i in range(7)]
    assert all(t.generation.text == "ok" for t in out)
    assert model.prepare_nice == [min(19, base + nice)] * 7
    assert set(model.model_nice) == {base}  # the model's thread keeps the caller's priority
    assert kernel_nice(threading.get_native_id()) == base


def test_lower_priority_touches_only_its_own_thread():
    main = threading.get_native_id()
    base = kernel_nice(main)
    seen = {}

    def worker():
        lower_priority(4)
        seen["self"] = kernel_nice(threading.get_native_id())
        seen["main"] = kernel_nice(main)
        seen["api"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    th = threading.Thread(target=worker)
    th.start()
    th.join()
    assert seen == {"self": min(19, base + 4), "main": base, "api": min(19, base + 4)}
    assert kernel_nice(main) == base


def test_default_keeps_the_priority_and_raising_it_is_refused():
    assert ExecSpec().prepare_nice == 0
    with pytest.raises(ValueError):
        ExecSpec(prepare_nice=-1)  # raising priority needs privileges: refused in the spec
