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
