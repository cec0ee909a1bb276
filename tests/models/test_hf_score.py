"""hf score mode against an independent reference: the plain full-sequence log-likelihood of each
prompt+option, one unpadded forward per sequence, computed here; the option's tokens split off as
lm-evaluation-harness's `_encode_pair` does (trailing whitespace of the context moves to the
continuation; continuation = whole[len(context):]). Tiny Qwen2.5-Omni thinker with video and audio."""

import pytest

from affectbench.core.specs import GenerationSpec, MediaSpec, ModelSpec
from affectbench.core.types import Message, Part
from affectbench.models.hf import HFModel
from tests._clips import make_clip

pytest.importorskip("transformers")
pytest.importorskip("torchvision")

GRID = ["-3.0", "-2.0", "-1.0", "0.0", "1.0", "2.0", "3.0"]
LABELS = ["positive", "negative", "neutral"]


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory):
    from tests._tiny import tiny_qwen_omni

    return tiny_qwen_omni(tmp_path_factory.mktemp("omni"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("clips")
    return make_clip(d / "a.mp4", 2.0), make_clip(d / "b.mp4", 1.0, freq=300)


def load(omni_dir, tmp, template_tail=None):
    m = HFModel(ModelSpec(backend="hf", name=str(omni_dir)), MediaSpec(fps=2), tmp)
    m.load()
    if template_tail is not None:  # a generation prompt that ends inside a word's whitespace
        before = m._proc.chat_template
        m._proc.chat_template = before.replace(
            "<|im_start|>assistant\n{% endif %}", "<|im_start|>assistant\n" + template_tail + "{% endif %}"
        )
        assert m._proc.chat_template != before
    return m


def conv(text, clip=None):
    parts = [Part(kind="video", path=str(clip)), Part(kind="audio", path=str(clip))] if clip else []
    return [Message(role="user", parts=[*parts, Part.of_text(text)])]


def reference(m, c, options, gen, seconds=None):
    """log P(option | prompt) from one full, unpadded forward of prompt+option per option; a video's
    time axis at its real sampling rate (frames decoded / `seconds` of clip: short clips get the
    4-frame minimum, so a 1 s clip is sampled at 4 fps, not 2)."""
    import torch

    proc, tok = m._proc, m._proc.tokenizer
    msgs, media, _ = m.chat_inputs(c, gen)
    videos = [p.data.frames for p in media if p.kind == "video"]
    audios = [p.data.audio for p in media if p.kind == "audio"]
    context = proc.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    out = {}
    for opt in options:
        n_space = len(context) - len(context.rstrip(" "))  # lm-eval: trailing spaces go to the continuation
        ctx, cont = context[: len(context) - n_space], context[len(context) - n_space :] + opt
        kw = {"return_tensors": "pt"}
        if videos:
            kw.update(videos=videos, videos_kwargs={"fps": len(videos[0]) / seconds})
        if audios:
            kw.update(audio=audios, sampling_rate=16000)
        whole = proc(text=[ctx + cont], **kw)
        n_ctx = len(tok(ctx, add_special_tokens=False)["input_ids"])
        n_media = whole["input_ids"].shape[1] - len(tok(ctx + cont, add_special_tokens=False)["input_ids"])
        start = n_ctx + n_media  # placeholders expand before the context's end
        with torch.no_grad():
            logp = torch.log_softmax(m._model(**whole).logits[0].float(), -1)
        ids = whole["input_ids"][0]
        out[opt] = sum(float(logp[i - 1, ids[i]]) for i in range(start, ids.shape[0]))
    return out


@pytest.mark.parametrize("options", [GRID, LABELS])
def test_scores_equal_full_sequence_loglikelihood(omni_dir, clips, tmp_path, options):
    m = load(omni_dir, tmp_path)
    gen = GenerationSpec(mode="score")
    convs = [
        m.prepare(conv("How does the speaker feel?", clips[0])),
        m.prepare(conv("And this one? Rate it.", clips[1])),
        conv("Text only."),
    ]
    gens = m.score(convs, options, gen)  # different prompt lengths in one batch
    for c, g, seconds in zip(convs, gens, (2.0, 1.0, None), strict=True):
        want = reference(m, c, options, gen, seconds)
        assert g.scores == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("options", [GRID, LABELS, ["positive"]])
def test_tokenisation_boundary_where_the_prompt_ends_in_a_space(omni_dir, clips, tmp_path, options):
    m = load(omni_dir, tmp_path, template_tail="The sentiment is ")
    tok = m._proc.tokenizer
    gen = GenerationSpec(mode="score")
    c = m.prepare(conv("How does the speaker feel?", clips[0]))
    text = m._proc.apply_chat_template(m.chat_inputs(c, gen)[0], add_generation_prompt=True, tokenize=False)
    # the boundary really merges here: the prompt's trailing space joins the option's first word
    assert text.endswith(" ")
    p = tok(text, add_special_tokens=False)["input_ids"]
    merges = any(tok(text + o, add_special_tokens=False)["input_ids"][: len(p)] != p for o in options)
    assert merges == (options != ["positive"])  # the prompt's last token merges with an option's first, or not
    (g,) = m.score([c], options, gen)
    assert g.scores == pytest.approx(reference(m, c, options, gen, seconds=2.0), abs=1e-4)


def test_a_template_that_opens_reasoning_scores_the_options_after_a_closed_empty_block(omni_dir, clips, tmp_path):
    """Qwen3-Thinking-style generation prompt ("…assistant\\n<think>\\n"): the options are scored as
    they are under the family's non-thinking prompt ("…assistant\\n<think>\\n\\n</think>\\n\\n", Qwen3's
    enable_thinking=false tail; see tests/models/test_reasoning_split.py), not inside the reasoning."""
    thinking = load(omni_dir, tmp_path / "t", template_tail="<think>\n")
    closed = load(omni_dir, tmp_path / "c", template_tail="<think>\n\n</think>\n\n")
    gen = GenerationSpec(mode="score")
    c = thinking.prepare(conv("How does the speaker feel?", clips[0]))
    (g,) = thinking.score([c], LABELS, gen)
    assert g.meta.get("reasoning_closed") is True
    assert g.scores == pytest.approx(reference(closed, c, LABELS, gen, seconds=2.0), abs=1e-4)
    inside = reference(thinking, c, LABELS, gen, seconds=2.0)  # the old behaviour: options inside <think>
    assert max(abs(g.scores[o] - inside[o]) for o in LABELS) > 1e-3


def test_a_score_run_records_the_closed_reasoning_block(tmp_path):
    """End to end: a checkpoint whose saved chat template opens <think> in the generation prompt; the
    run's predictions carry meta["reasoning_closed"] and its metrics count them (`_reasoning_closed`)."""
    from affectbench.engine.runner import run_spec
    from affectbench.engine.store import Store
    from tests._tiny import tiny_qwen_omni
    from tests.engine.test_runner import manifest_spec, write_manifest

    ckpt = tiny_qwen_omni(tmp_path / "omni")
    path = ckpt / "chat_template.jinja"
    before = path.read_text()
    path.write_text(before.replace("<|im_start|>assistant\n{% endif %}", "<|im_start|>assistant\n<think>\n{% endif %}"))
    assert path.read_text() != before
    root = write_manifest(tmp_path / "data", 4)
    store = Store(tmp_path / "ws.sqlite")
    spec = manifest_spec(
        root,
        model=ModelSpec(backend="hf", name=str(ckpt)),
        generation=GenerationSpec(mode="score", calibration="none"),
    )
    rec = run_spec(spec, store)
    assert rec.status == "done"
    assert all(p.meta.get("reasoning_closed") is True for p in store.predictions(rec.id))
    assert rec.metrics["_reasoning_closed"] == 4
