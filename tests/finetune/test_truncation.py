"""Left truncation to finetune.max_length: the prompt's start goes, the answer stays, media tokens are never cut."""

from __future__ import annotations

import pytest

from affectbench.core.errors import AffectbenchError
from affectbench.finetune.backends import _tail_labels
from affectbench.finetune.lora import truncate_left

PAD, MEDIA = 0, 99


def _batch(rows: list[list[int]], answers: list[int]):
    import torch

    width = max(map(len, rows))
    ids = torch.tensor([[PAD] * (width - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return {"input_ids": ids, "attention_mask": mask, "labels": _tail_labels(ids, answers)}


def test_long_rows_keep_their_last_tokens_and_answer():
    inputs = _batch([[1, 2, 3, 4, 5, 6, 7, 8], [11, 12, 13]], [2, 1])
    cut = truncate_left(inputs, 5, {MEDIA}, ["a", "b"])
    assert cut == ["a"]
    assert inputs["input_ids"].tolist() == [[4, 5, 6, 7, 8], [PAD, PAD, 11, 12, 13]]
    assert inputs["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]
    assert inputs["labels"].tolist() == [[-100, -100, -100, 7, 8], [-100, -100, -100, -100, 13]]


def test_short_batches_are_left_alone():
    inputs = _batch([[1, 2, 3]], [1])
    assert truncate_left(inputs, 3, {MEDIA}, ["a"]) == [] and inputs["input_ids"].tolist() == [[1, 2, 3]]


def test_a_cut_through_media_tokens_is_refused_with_the_sample_id():
    inputs = _batch([[1, MEDIA, MEDIA, 4, 5, 6]], [1])
    with pytest.raises(AffectbenchError, match="sample clip-7 .*audio/video tokens"):
        truncate_left(inputs, 4, {MEDIA}, ["clip-7"])


def test_an_answer_longer_than_max_length_is_refused():
    inputs = _batch([[1, 2, 3, 4, 5, 6]], [5])
    with pytest.raises(AffectbenchError, match="answer of sample s1"):
        truncate_left(inputs, 3, {MEDIA}, ["s1"])


def test_fit_reason_keeps_what_left_truncation_can_cut_and_names_what_it_cannot():
    from affectbench.finetune.lora import DROP_ANSWER, DROP_MEDIA, fit_reason

    assert fit_reason([1, MEDIA, 3], 1, 3, {MEDIA}) is None  # fits whole: nothing is cut
    assert fit_reason([1, 2, MEDIA, 4, 5, 6], 2, 4, {MEDIA}) is None  # the cut (1, 2) has no media token
    assert fit_reason([1, MEDIA, 3, 4, 5, 6], 2, 4, {MEDIA}) == DROP_MEDIA
    assert fit_reason([1, 2, 3, 4, 5, 6], 4, 4, {MEDIA}) == DROP_ANSWER  # 4 labels need 5 positions (shift)
    assert fit_reason([1, 2, 3, 4, 5, 6], 3, 4, {MEDIA}) is None


def test_pairs_that_cannot_fit_are_dropped_with_a_counted_reason():
    """A pair whose cut would remove media tokens costs that pair, not the run; the longest kept row fits."""
    from types import SimpleNamespace

    from affectbench.finetune.backends import Trainable
    from affectbench.finetune.lora import DROP_ANSWER, DROP_MEDIA, PairCollator, fit_pairs

    rows = {"short": ([5, 6, 7], 1), "long-text": ([1, 2, 3, 4, 5, 6, 7], 1), "clip": ([MEDIA] * 4 + [5, 6, 7], 1)}
    rows["chatty"] = ([1, 2, 3, 4, 5, 6, 7], 6)

    def encode(convs, answers):
        picked = [rows[c] for c in convs]
        return _batch([r for r, _ in picked], [n for _, n in picked])

    t = Trainable(module=None, encode=encode, prepare=lambda c: c, media_ids={MEDIA})
    pairs = [SimpleNamespace(sample=SimpleNamespace(id=k), conversation=k, answer="a") for k in rows]
    kept, dropped, tokens = fit_pairs(t, pairs, 5)
    assert [p.sample.id for p in kept] == ["short", "long-text"]
    assert dropped == {DROP_MEDIA: ["clip"], DROP_ANSWER: ["chatty"]}
    assert tokens == {"short": 3, "long-text": 7}  # before truncation
    batch = PairCollator(t, 5)(kept)  # the collator then never meets a pair it must refuse
    assert batch["input_ids"].shape[1] == 5


def test_a_finetune_with_unfit_pairs_drops_them_and_finishes(tmp_path):
    from affectbench.core.specs import FinetuneSpec, RunSpec
    from affectbench.engine.store import Store
    from affectbench.finetune import run_finetune
    from affectbench.finetune.lora import DROP_ANSWER
    from tests._tiny import tiny_qwen_omni
    from tests.finetune._fixtures import UNEVEN_LABELS, write_uneven_corpus

    model = {"backend": "hf", "name": str(tiny_qwen_omni(tmp_path / "omni"))}
    ds = write_uneven_corpus(tmp_path / "data", {"train": 4, "valid": 2, "test": 0})
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model["name"])
    long_answer = len(tok(UNEVEN_LABELS[1] + "<|im_end|>")["input_ids"])
    max_length = long_answer - 2  # the long answer cannot fit, "no" pairs lose their prompt's start
    ft = FinetuneSpec(epochs=1, lr=1e-2, batch_size=2, rank=4, alpha=8, dropout=0.0, max_length=max_length)
    spec = RunSpec(kind="finetune", dataset=ds, model=model, media={"modalities": "T"}, finetune=ft)
    rec = run_finetune(Store(tmp_path / "ws" / "affectbench.sqlite"), spec)
    assert rec.status == "done"
    assert rec.metrics["_dropped"] == {DROP_ANSWER: 3} and rec.metrics["dropped"] == 3  # 2 of 4 train, 1 of 2 valid
    assert rec.metrics["truncated"] == 3 and rec.metrics["steps"] == 1
    assert 0 < rec.metrics["longest_tokens"] <= max_length
    assert rec.metrics["_recipe"]["total_steps"] == 1 and rec.metrics["_recipe"]["loss_tokens"] == "completion"
