"""Knowledge elicitation templates: parse returns cleaned text; refusals and empty outputs fail."""

from __future__ import annotations

import json

import pytest

from affectbench.prompts import load_prompt

from ._infos import MELD, MOSI

DESCRIBE = ["describe", "describe_face", "describe_voice", "describe_words"]


@pytest.mark.parametrize("name", DESCRIBE)
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "The speaker smiles broadly; her voice is bright and fast.",
            "The speaker smiles broadly; her voice is bright and fast.",
        ),
        ("  \n Face: frowning.\n\n\n\nVoice: low, slow.  \n", "Face: frowning.\n\nVoice: low, slow."),
        ("<think>let me look</think>Face: eyebrows raised.", "Face: eyebrows raised."),
        ("```\nFace: tense jaw.\n```", "Face: tense jaw."),
        ("", None),
        ("   ", None),
        (None, None),
        ("I'm sorry, but I can't analyze videos.", None),
        ("I cannot help with identifying people.", None),
        ("As an AI, I am unable to perceive audio.", None),
        ("<think>first the face, then", None),
    ],
)
def test_describe_parse(name, text, expected):
    info = MOSI if name == "describe_words" else MELD  # elicitation works for any task
    parsed = load_prompt(name, info).parse(text, info)
    assert parsed.value == expected
    assert parsed.ok == (expected is not None)
    if expected is None:
        assert parsed.reason


def test_long_answer_that_starts_apologetically_is_kept():
    text = "I can't see the face clearly, but " + "the voice trembles and the words are hesitant. " * 10
    parsed = load_prompt("describe", MELD).parse(text, MELD)
    assert parsed.ok and parsed.value.startswith("I can't see")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"face": "smiling", "voice": "loud", "words": "praise", "conflicts": null}',
            {"face": "smiling", "voice": "loud", "words": "praise", "conflicts": None},
        ),
        ('Sure!\n```json\n{"face": "frown", "voice": "flat"}\n```', {"face": "frown", "voice": "flat"}),
        ("{'face': 'neutral'}", {"face": "neutral"}),
        ("Face: smiling, voice: loud", None),
        ("", None),
    ],
)
def test_describe_json_parse(text, expected):
    parsed = load_prompt("describe_json", MELD).parse(text, MELD)
    if expected is None:
        assert not parsed.ok and parsed.value is None
    else:
        assert parsed.ok and json.loads(parsed.value) == expected


def test_elicitation_templates_are_flagged_and_versioned():
    for name in [*DESCRIBE, "describe_json"]:
        p = load_prompt(name, MELD)
        assert p.kind == "elicit" and p.version
    assert load_prompt("describe_face", MELD).attach == ("video",)
    assert load_prompt("describe_voice", MELD).attach == ("audio",)
    assert load_prompt("describe_words", MELD).attach == ("text",)
    assert load_prompt("emotion", MELD).kind == "answer"
