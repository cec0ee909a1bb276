"""exec.order: length — model batches of similar prompt length, the store still in dataset order, padding
measured; against arrival order on the same samples."""

from __future__ import annotations

import pytest

from affectbench.core.specs import ExecSpec, GenerationSpec
from affectbench.core.types import Generation, Message, Part, Sample
from affectbench.engine.execution import Call, LocalExecutor, Task, length_batches, padding_waste


class Recorder:
    """A test double model: answers each conversation with its text and records every batch it got."""

    def __init__(self):
        self.batches = []

    def prepare(self, conv):
        return conv

    def generate(self, batch, gen):
        texts = [c[0].parts[0].text for c in batch]
        self.batches.append(texts)
        return [Generation(text=t) for t in texts]


def tasks(lengths):
    return [
        Task(Sample(id=f"s{i}", transcript="", target=None), [Message(role="user", parts=[Part.of_text("x" * n)])])
        for i, n in enumerate(lengths)
    ]


LENGTHS = [400, 8, 396, 12, 200, 16, 404, 4, 196, 20, 8, 400]


@pytest.mark.parametrize("order", ["arrival", "length"])
def test_batches_and_the_order_tasks_come_back(order):
    model = Recorder()
    ex = LocalExecutor(model, ExecSpec(batch_size=3, prefetch=2, workers=1, order=order))
    out = [t for b in ex.answer(iter(tasks(LENGTHS)), Call(GenerationSpec())) for t in b]
    assert [t.sample.id for t in out] == [f"s{i}" for i in range(len(LENGTHS))]  # dataset order, either way
    assert all(t.generation.text == "x" * n for t, n in zip(out, LENGTHS, strict=True))
    sizes = [[len(x) for x in b] for b in model.batches]
    if order == "arrival":
        assert sizes == [LENGTHS[k : k + 3] for k in range(0, 12, 3)]
    else:  # windows of prefetch x batch = 6, each sorted by length, then cut into batches of 3
        assert sizes == [[8, 12, 16], [200, 396, 400], [4, 8, 20], [196, 400, 404]]
    waste = padding_waste([[n // 4 for n in b] for b in sizes])
    # by hand: arrival pads 537 of 516 real tokens, length 114 (rows padded to their batch's longest)
    assert waste == pytest.approx((114 if order == "length" else 537) / 516)


def test_length_batches_is_a_stable_sort():
    ts = tasks([5, 1, 5, 1])
    got = length_batches(ts, 2, lambda t: len(t.conversation[0].parts[0].text))
    assert [[t.sample.id for t in b] for b in got] == [["s1", "s3"], ["s0", "s2"]]


def test_padding_waste_counts_padded_over_real_tokens():
    assert padding_waste([[10, 4], [3]]) == pytest.approx(6 / 17)
    assert padding_waste([]) == 0.0


def test_hf_omni_answers_equal_and_padding_drops_with_length_order(tmp_path):
    """A batch-invariant family (Qwen2.5-Omni): the same greedy answers in either order, less padding."""
    pytest.importorskip("transformers")
    pytest.importorskip("torchvision")
    import json

    from affectbench.core.specs import RunSpec
    from affectbench.engine.runner import run_spec
    from affectbench.engine.store import Store
    from tests._clips import make_clip
    from tests._tiny import tiny_qwen_omni
    from tests.finetune._fixtures import dataset_ref

    ckpt = tiny_qwen_omni(tmp_path / "omni")
    root = tmp_path / "data"
    root.mkdir()
    rows = []
    for i, secs in enumerate([1.0, 6.0, 1.2, 5.5, 1.5, 6.5, 1.1, 5.0]):
        clip = make_clip(root / f"c{i}.mp4", secs, freq=200 + 30 * i)
        label = "positive" if i % 2 else "negative"
        rows.append(
            {"id": f"t{i}", "label": label, "transcript": "ok", "split": "test", "video": str(clip), "audio": str(clip)}
        )
    (root / "manifest.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    spec = RunSpec(
        dataset=dataset_ref(root), model={"backend": "hf", "name": str(ckpt)}, generation={"max_new_tokens": 3}
    )
    got = {}
    for order in ("arrival", "length"):
        store = Store(tmp_path / order / "affectbench.sqlite")
        rec = run_spec(spec, store, ExecSpec(batch_size=2, prefetch=4, workers=1, order=order))
        preds = store.predictions(rec.id)
        assert [p.sample_id for p in preds] == [f"t{i}" for i in range(8)]  # stored in dataset order
        real = sum(p.meta["n_input_tokens"] for p in preds)
        padded = sum(p.meta["padded_to"] - p.meta["n_input_tokens"] for p in preds)
        got[order] = ([p.raw for p in preds], padded / real)
    assert got["arrival"][0] == got["length"][0]
    assert got["length"][1] < got["arrival"][1] / 3 and got["length"][1] < 0.10
