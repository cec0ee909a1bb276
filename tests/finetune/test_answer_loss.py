"""The answer-only loss equals the model's own `labels=` loss while projecting few positions."""

from __future__ import annotations

import pytest

from affectbench.finetune.backends import _tail_labels
from affectbench.finetune.lora import answer_loss
from tests._tiny import tiny_gemma3


@pytest.mark.parametrize("answer_lengths", [[3, 3], [1, 4], [5, 2]])
def test_answer_loss_matches_full_loss(answer_lengths):
    import torch

    model = tiny_gemma3(97, max_positions=128)
    ids = torch.randint(1, 97, (2, 20))
    mask = torch.ones_like(ids)
    ids[0, :4], mask[0, :4] = 0, 0  # left padding on one row
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": _tail_labels(ids, answer_lengths)}
    with torch.no_grad():
        full = model(**inputs).loss
        ours = answer_loss(model, inputs)
    assert float(ours) == pytest.approx(float(full), rel=1e-5)


def test_answer_loss_gradients_match():
    import torch

    model = tiny_gemma3(97, max_positions=128)
    ids = torch.randint(1, 97, (2, 12))
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": _tail_labels(ids, [2, 3])}
    model(**inputs).loss.backward()
    want = model.model.layers[0].self_attn.q_proj.weight.grad.clone()
    model.zero_grad()
    answer_loss(model, inputs).backward()
    got = model.model.layers[0].self_attn.q_proj.weight.grad
    assert torch.allclose(got, want, atol=1e-6)
