"""Rendering: modality filtering, spans, context, knowledge slot and trimming, template errors."""

from __future__ import annotations

import pytest

from affectbench.core.errors import ConfigError
from affectbench.core.types import Sample, Turn
from affectbench.prompts import default_prompt_name, list_prompts, load_prompt, prompt_summaries, trim_knowledge
from affectbench.prompts.template import KNOWLEDGE_MARKER, TemplatePrompt

from ._infos import GENERIC, IEMOCAP6, MELD, MELD_SENT, MOSI, MUSTARD, SIMS, URFUNNY


def _sample(**kw) -> Sample:
    base = dict(
        id="dia1_utt3",
        transcript="You ate my sandwich?",
        target="anger",
        media={"video": "/data/meld/dia1_utt3.mp4"},
        context=[Turn("Hey, what's up?", "Joey"), Turn("Nothing much.", "Ross")],
        speaker="Ross",
        span=(1.5, 4.0),
    )
    base.update(kw)
    return Sample(**base)


def _kinds(messages) -> list[str]:
    return [p.kind for p in messages[-1].parts]


@pytest.mark.parametrize(
    ("mods", "kinds", "has_transcript"),
    [
        ("TAV", ["video", "audio", "text"], True),
        ("T", ["text"], True),
        ("A", ["audio", "text"], False),
        ("V", ["video", "text"], False),
        ("AV", ["video", "audio", "text"], False),
        ("TA", ["audio", "text"], True),
        ("VT", ["video", "text"], True),
    ],
)
def test_modality_filtering(mods, kinds, has_transcript):
    p = load_prompt("default", MELD)
    msgs = p.render(_sample(), MELD, modalities=mods)
    assert _kinds(msgs) == kinds
    text = msgs[-1].text
    assert ("You ate my sandwich?" in text) == has_transcript
    assert ("Joey: Hey, what's up?" in text) == has_transcript  # context is text: only with T
    assert text.count("Choose exactly one of") == 1


def test_media_parts_point_at_the_clip_with_its_span():
    msgs = load_prompt("default", MELD).render(_sample(), MELD)
    video, audio, _ = msgs[-1].parts
    assert video.path == audio.path == "/data/meld/dia1_utt3.mp4"  # audio track extracted by the backend
    assert video.span == audio.span == (1.5, 4.0)


def test_separate_audio_file_and_span_applies_to_video_only():
    s = _sample(
        media={"video": "/iemocap/Ses01F_impro01.avi", "audio": "/iemocap/Ses01F_impro01_F000.wav"},
        meta={"span_applies_to": "video"},
    )
    video, audio, _ = load_prompt("default", IEMOCAP6).render(s, IEMOCAP6)[-1].parts
    assert audio.path.endswith("F000.wav") and audio.span is None
    assert video.span == (1.5, 4.0)
    s.meta = {}
    assert load_prompt("default", IEMOCAP6).render(s, IEMOCAP6)[-1].parts[1].span == (1.5, 4.0)


def test_sample_without_media_gets_only_text():
    msgs = load_prompt("default", MELD).render(_sample(media={}), MELD)
    assert _kinds(msgs) == ["text"]
    assert "in this utterance" in msgs[-1].text


def test_audio_only_sample_wording():
    msgs = load_prompt("default", MELD).render(_sample(media={"audio": "/a.wav"}), MELD)
    assert _kinds(msgs) == ["audio", "text"]
    assert "audio clip" in msgs[-1].text


def test_system_message_only_when_given():
    p = load_prompt("default", MELD)
    assert [m.role for m in p.render(_sample(), MELD)] == ["user"]
    msgs = p.render(_sample(), MELD, system="You are an emotion expert.")
    assert [m.role for m in msgs] == ["system", "user"]
    assert msgs[0].text == "You are an emotion expert."


def test_bad_modalities_are_a_config_error():
    with pytest.raises(ConfigError, match="modalities"):
        load_prompt("default", MELD).render(_sample(), MELD, modalities="TX")
    with pytest.raises(ConfigError, match="modalities"):
        load_prompt("default", MELD).render(_sample(), MELD, modalities="")


def test_single_modality_elicitation_templates_attach_only_their_modality():
    s = _sample(media={"video": "/v.mp4", "audio": "/a.wav"})
    face = load_prompt("describe_face", MELD).render(s, MELD)
    voice = load_prompt("describe_voice", MELD).render(s, MELD)
    words = load_prompt("describe_words", MELD).render(s, MELD)
    assert _kinds(face) == ["video", "text"] and "sandwich" not in face[-1].text
    assert _kinds(voice) == ["audio", "text"] and voice[-1].parts[0].path == "/a.wav"
    assert _kinds(words) == ["text"] and "sandwich" in words[-1].text
    full = load_prompt("describe", MELD).render(s, MELD, modalities="V")
    text = full[-1].text
    assert "- Face" in text and "- Voice" not in text and "- Words" not in text


def test_context_rendering_and_limit():
    turns = [Turn(f"line {i}", f"S{i % 2}") for i in range(20)]
    text = load_prompt("default", MUSTARD).render(_sample(context=turns, target="sincere"), MUSTARD)[-1].text
    assert "S1: line 19" in text and "S0: line 8" in text
    assert "line 7\n" not in text  # only the last 12 turns
    assert text.index("line 8") < text.index("line 19") < text.index("You ate my sandwich?")
    no_speaker = load_prompt("default", MELD).render(_sample(context=[Turn("hello")]), MELD)[-1].text
    assert "Someone: hello" in no_speaker
    bare = load_prompt("default", MELD).render(_sample(context=[]), MELD)[-1].text
    assert "Earlier in the conversation" not in bare


def test_knowledge_slot():
    p = load_prompt("default", MELD)
    without = p.render(_sample(), MELD)[-1].text
    assert "Notes on the clip" not in without
    knowledge = "Face: wide smile, raised cheeks. Voice: high pitch, fast."
    with_k = p.render(_sample(), MELD, knowledge=knowledge)[-1].text
    assert knowledge in with_k
    assert with_k.index(knowledge) < with_k.index("Choose exactly one")
    # knowledge is not text of the sample: it stays in A-only runs
    assert knowledge in p.render(_sample(), MELD, knowledge=knowledge, modalities="A")[-1].text


def test_knowledge_is_trimmed_deterministically_at_sentence_boundaries():
    sentence = "The speaker frowns and the voice is tense. "
    long = sentence * 100
    p = load_prompt("default", MELD)
    a = p.render(_sample(), MELD, knowledge=long)[-1].text
    b = p.render(_sample(), MELD, knowledge=long)[-1].text
    assert a == b
    assert KNOWLEDGE_MARKER in a
    trimmed = trim_knowledge(long, 1500)
    assert len(trimmed) <= 1500
    assert trimmed.endswith("tense.\n" + KNOWLEDGE_MARKER)
    assert trim_knowledge("short. text", 1500) == "short. text"


def test_trim_knowledge_boundaries():
    lines = "\n".join(f"- cue number {i} without a full stop" for i in range(40))
    t = trim_knowledge(lines, 200)
    assert len(t) <= 200 and t.endswith(KNOWLEDGE_MARKER)
    assert t.split("\n")[-2].startswith("- cue number")  # cut at a line end, not mid-line
    words = "word " * 400
    t = trim_knowledge(words, 100)
    assert len(t) <= 100 and t.endswith(KNOWLEDGE_MARKER) and "wor\n" not in t
    blob = "x" * 1000
    t = trim_knowledge(blob, 100)
    assert len(t) <= 100 and t.startswith("xxx") and t.endswith(KNOWLEDGE_MARKER)


def test_knowledge_budget_comes_from_the_template(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "version: t-1\nkind: answer\ntask: classification\nattach: [text]\nknowledge_budget: 60\n"
        "text: '{{ knowledge }} | {{ transcript }}'\nparse: {type: label}\n"
    )
    p = load_prompt(str(path), MELD)
    text = p.render(_sample(), MELD, knowledge="First fact here. Second fact here. Third fact here. Fourth fact.")[
        -1
    ].text
    assert text.startswith("First fact here. Second fact here.\n" + KNOWLEDGE_MARKER + " | ")


def test_fewshot_examples_follow_the_label_space_and_need_text():
    p = load_prompt("emotion_fewshot", MELD)
    text = p.render(_sample(), MELD)[-1].text
    assert "Emotion: joy" in text and "Emotion: anger" in text
    text6 = load_prompt("emotion_fewshot", IEMOCAP6).render(_sample(target="happy"), IEMOCAP6)[-1].text
    assert "Emotion: happy" in text6 and "Emotion: angry" in text6
    assert "Emotion: surprise" not in text6  # not an IEMOCAP label: the example is left out
    assert "Examples" not in p.render(_sample(), MELD, modalities="AV")[-1].text
    sims = load_prompt("sentiment_score_fewshot", SIMS).render(_sample(target=0.2), SIMS)[-1].text
    assert "Score: -0.8" in sims and "2.8" not in sims


def test_fewshot_examples_are_parsed_once_per_dataset(monkeypatch):
    p = load_prompt("emotion_fewshot", MELD)
    calls = []
    parse = p.parse
    monkeypatch.setattr(p, "parse", lambda text, info: calls.append(text) or parse(text, info))
    first = p.render(_sample(), MELD)[-1].text
    n = len(calls)
    assert p.render(_sample(), MELD)[-1].text == first
    assert len(calls) == n  # the examples' answers are not parsed again on every render


def test_default_template_per_task():
    assert default_prompt_name(MOSI) == "sentiment_score"
    assert default_prompt_name(SIMS) == "sentiment_score"
    assert default_prompt_name(MELD_SENT) == "sentiment_polarity"
    assert default_prompt_name(MELD) == "emotion"
    assert default_prompt_name(MUSTARD) == "sarcasm"
    assert default_prompt_name(URFUNNY) == "humour"
    assert default_prompt_name(GENERIC) == "classify"
    assert load_prompt("default", MOSI).name == "sentiment_score"
    assert "-3 (strongly negative) to 3" in load_prompt("default", MOSI).render(_sample(target=1.0), MOSI)[-1].text
    assert "-1 (strongly negative) to 1" in load_prompt("default", SIMS).render(_sample(target=0.2), SIMS)[-1].text


def test_list_and_summaries():
    names = list_prompts()
    for required in (
        "sentiment_score",
        "sentiment_polarity",
        "emotion",
        "sarcasm",
        "humour",
        "describe",
        "describe_face",
        "describe_voice",
        "describe_words",
        "describe_json",
        "emotion_fewshot",
    ):
        assert required in names
    summaries = prompt_summaries()
    assert set(summaries) == set(names)
    assert all(s and not s.startswith("(broken") for s in summaries.values())


def test_every_template_has_a_unique_version_and_fingerprint():
    prompts = []
    for name in list_prompts():
        info = MOSI if "score" in name else MELD
        prompts.append(load_prompt(name, info))
    versions = [p.version for p in prompts]
    assert len(set(versions)) == len(versions)
    assert all(p.fingerprint.startswith(f"{p.name}@{p.version}+") for p in prompts)
    assert isinstance(prompts[0], TemplatePrompt)


def test_unknown_prompt_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown prompt 'emotoin'.*emotion.*sarcasm"):
        load_prompt("emotoin", MELD)


def test_task_mismatch_is_refused():
    with pytest.raises(ConfigError, match="regression"):
        load_prompt("emotion", MOSI)
    with pytest.raises(ConfigError, match="classification"):
        load_prompt("sentiment_score", MELD)


GOOD = "version: x-1\nkind: answer\ntask: classification\nattach: [text]\ntext: 'Say {{ labels|join(\", \") }}'\n"


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("version: x-1\nkind: answer\nattach: [text]\ntext: hi\n", "key 'parse'"),
        (GOOD + "parse: {type: label}\ncolour: red\n", "key 'colour'"),
        (GOOD + "parse: {type: lable}\n", "key 'parse.type'"),
        (GOOD.replace("[text]", "[text, smell]") + "parse: {type: label}\n", "key 'attach.1'"),
        ("version: x-1\nkind: answer\nattach: [text]\ntext: '{{ transcript'\nparse: {type: label}\n", "key 'text'"),
        ("version: x-1\nkind: answer\nattach: [text]\ntext: '{{ transcrpt }}'\nparse: {type: label}\n", "transcrpt"),
        ("- just\n- a list\n", "mapping"),
        ("version: [unclosed\n", "not valid YAML"),
        ("extends: nowhere\nversion: x\n", "key 'extends'"),
    ],
)
def test_malformed_templates_name_file_and_key(tmp_path, body, needle):
    path = tmp_path / "broken.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as e:
        load_prompt(str(path), MELD)
    assert str(path) in str(e.value)
    assert needle in str(e.value)


def test_extends_merges_and_detects_cycles(tmp_path):
    (tmp_path / "base.yaml").write_text(GOOD + "parse: {type: label, synonyms: {joy: [glee]}}\n")
    (tmp_path / "child.yaml").write_text("extends: base\nversion: child-1\nparse: {negations: {}}\n")
    child = load_prompt(str(tmp_path / "child.yaml"), MELD)
    assert child.version == "child-1" and child.parse("glee", MELD).value == "joy"
    (tmp_path / "a.yaml").write_text("extends: b\n")
    (tmp_path / "b.yaml").write_text("extends: a\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_prompt(str(tmp_path / "a.yaml"), MELD)


def test_missing_template_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_prompt("/nonexistent/x.yaml", MELD)


def test_empty_transcript_is_treated_as_absent():
    text = load_prompt("default", MELD).render(_sample(transcript="  "), MELD)[-1].text
    assert 'says: ""' not in text and "says" not in text
    assert "Choose exactly one of" in text
