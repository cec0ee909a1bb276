"""Contextual calibration's prior checked by hand: the three content-free prompts are written out here
(not rendered by affectbench), scored with the tiny model's own logits through plain transformers, and
normalised and averaged in probability space as Zhao et al. 2021 ("Calibrate Before Use", §4) do."""

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from affectbench.core.specs import GenerationSpec, ModelSpec
from affectbench.engine.runner import run_spec
from affectbench.engine.store import Store
from tests.engine.test_runner import LABELS, manifest_spec, write_manifest

CORPUS = ["utterance sounds negative neutral positive Answer with one word N/A [MASK]"] * 5
QUESTION = (
    "What is the sentiment of the speaker in this utterance?\n"
    "Choose exactly one of: negative, neutral, positive.\n"
    "Answer with the label only.<end_of_turn>\n<start_of_turn>model\n"
)
# the run's prompt on the content-free inputs "N/A", "" and "[MASK]" (an empty transcript has no quote line)
CONTENT_FREE_PROMPTS = [
    '<bos><start_of_turn>user\nThe speaker says: "N/A"\n\n' + QUESTION,
    "<bos><start_of_turn>user\n" + QUESTION,
    '<bos><start_of_turn>user\nThe speaker says: "[MASK]"\n\n' + QUESTION,
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests._tiny import tiny_gemma3_checkpoint

    return str(tiny_gemma3_checkpoint(tmp_path_factory.mktemp("gemma-cf"), CORPUS))


def _option_logprob(model, tok, prompt: str, option: str) -> float:
    """log P(option | prompt): one full forward over prompt + option tokens, summed over the option."""
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    o = tok(option, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + o])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return float(sum(logp[len(p) - 1 + i, t] for i, t in enumerate(o)))


def test_the_stored_prior_equals_the_one_computed_by_hand(tiny, tmp_path):
    root = write_manifest(tmp_path / "data", 6)
    spec = manifest_spec(
        root,
        model=ModelSpec(backend="cascade", name=tiny, options={"experts": []}),
        generation=GenerationSpec(mode="score", calibration="contextual"),
    )
    rec = run_spec(spec, Store(tmp_path / "ws.sqlite"))
    tok = AutoTokenizer.from_pretrained(tiny)
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    probs = []
    for prompt in CONTENT_FREE_PROMPTS:
        s = np.array([_option_logprob(model, tok, prompt, o) for o in LABELS])
        probs.append(np.exp(s) / np.exp(s).sum())  # normalised over the options, then averaged
    p_cf = np.mean(probs, axis=0)
    for p in Store(tmp_path / "ws.sqlite").predictions(rec.id):
        assert [np.exp(p.meta["score_prior"][o]) for o in LABELS] == pytest.approx(list(p_cf), rel=1e-4)
        q = np.exp([p.meta["scores"][o] for o in LABELS])
        assert p.raw == LABELS[int(np.argmax(q / q.sum() / p_cf))]  # W = diag(p_cf)^-1, b = 0
