"""hf backend: end tokens, finish_reason and token counts on the tiny Qwen2.5-Omni thinker.

The thinker's logits are forced through a forward hook on its lm_head (a test double for what a real
thinker emits: the answer, then <|endoftext|>, then an invented new turn); everything else — the
processor, generate(), the backend's cut and count — is the real code.
"""

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models import stops
from affectbench.models.hf import HFModel
from tests.models._forced import ForcedTokens

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def omni(tmp_path_factory):
    from tests._tiny import tiny_qwen_omni

    d = tiny_qwen_omni(tmp_path_factory.mktemp("omni"))
    model = HFModel(ModelSpec(backend="hf", name=str(d)), MediaSpec(), tmp_path_factory.mktemp("ws"))
    model.load()
    return model


def text_conv(text):
    return [Message(role="user", parts=[Part.of_text(text)])]


def test_end_tokens_of_the_checkpoint(omni):
    tok = omni._proc.tokenizer
    want = {tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")}
    assert set(omni.end_ids) == want
    assert stops.template_end_token(tok) == "<|im_end|>"


def test_stops_at_endoftext_cuts_the_invented_turn_and_counts(omni):
    tok = omni._proc.tokenizer
    answer = tok("sadness", add_special_tokens=False)["input_ids"]
    run_on = tok("\nuser\nassistant\njoy joy joy", add_special_tokens=False)["input_ids"]
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    never_ends = tok("neutral", add_special_tokens=False)["input_ids"]
    gen = GenerationSpec(max_new_tokens=len(answer) + 1 + len(run_on))
    lm_head = omni._model.get_output_embeddings()
    with ForcedTokens(lm_head, [answer + [eot] + run_on, never_ends]):
        g_end, g_len = omni.generate([text_conv("How does the speaker feel?"), text_conv("And now?")], gen)
    assert g_end.text == "sadness"
    assert g_end.n_output_tokens == len(answer) + 1  # the answer and its end token, nothing after
    assert g_end.finish_reason == "stop"
    assert g_len.finish_reason == "length"
    assert g_len.n_output_tokens == gen.max_new_tokens
    assert g_len.text == tok.decode(never_ends + [never_ends[-1]] * (gen.max_new_tokens - len(never_ends)))


def test_cut_at_end_rules():
    assert stops.cut_at_end([5, 6, 1, 7], {1}, 4) == (3, "stop")
    assert stops.cut_at_end([5, 6, 7], {1}, 3) == (3, "length")
    assert stops.cut_at_end([5], {1}, 3) == (1, None)
    assert stops.cut_text_at_end("joy<|endoftext|>\nuser\nsad") == ("joy", True)
    assert stops.finish_reason("length") == "length" and stops.finish_reason("abort") is None
