"""Table-driven parsing of messy, realistic model outputs, through the packaged templates."""

from __future__ import annotations

import pytest

from affectbench.core.types import UNREAD_REASONS
from affectbench.prompts import load_prompt
from affectbench.prompts.parsing import LabelMatcher, parse_label

from ._infos import IEMOCAP4, IEMOCAP6, MELD, MELD_SENT, MOSI, MUSTARD, SIMS, URFUNNY

U = None  # unread, any reason


class Unread(str):
    """Expected: unread for this reason (one of types.UNREAD_REASONS)."""


AMB = Unread("ambiguous")

# (prompt, dataset info, model output, expected value; None = unparseable)
CASES = [
    # --- MELD emotion
    ("default", MELD, "joy", "joy"),
    ("default", MELD, "Joy", "joy"),
    ("default", MELD, "JOY.", "joy"),
    ("default", MELD, "  happy  ", "joy"),
    ("default", MELD, "Happiness", "joy"),
    ("default", MELD, "The speaker seems angry.", "anger"),
    ("default", MELD, "mad", "anger"),
    ("default", MELD, "sad", "sadness"),
    ("default", MELD, "**Surprise**", "surprise"),
    ("default", MELD, "Answer: Disgust", "disgust"),
    ("default", MELD, '{"emotion": "joy"}', "joy"),
    ("default", MELD, '```json\n{"emotion": "Fear", "confidence": 0.8}\n```', "fear"),
    ("default", MELD, "{'emotion': 'sadness'}", "sadness"),
    ("default", MELD, '{"reasoning": "she is not angry, she smiles", "emotion": "happy"}', "joy"),
    ("default", MELD, "joy, surprise", AMB),  # two labels, no cue: never the first silently
    ("default", MELD, "Options: neutral, surprise, fear. Answer: fear", "fear"),
    ("default", MELD, "The speaker is not angry but sad.", "sadness"),
    ("default", MELD, "I'd say surprised, maybe a bit scared.", "surprise"),
    ("default", MELD, "The emotion is anger.", "anger"),
    ("default", MELD, "Final answer: neutral", "neutral"),
    ("default", MELD, "It could be joy or surprise.\nFinal answer: surprise", "surprise"),
    ("default", MELD, "<think>Maybe anger? No, she laughs.</think>joy", "joy"),
    ("default", MELD, "<think>Let me think about the face and the voice", U),
    ("default", MELD, "", U),
    ("default", MELD, "   \n  ", U),
    ("default", MELD, "I cannot determine the emotion from this clip.", U),
    ("default", MELD, "excited", "joy"),
    ("default", MELD, "overjoyed? no: content", U),
    ("default", MELD, "fearful", "fear"),
    ("default", MELD, "1. sadness\n2. anger", AMB),
    ("default", MELD, "Emotion: *neutral*", "neutral"),
    ("default", MELD, "disgusted", "disgust"),
    # --- IEMOCAP
    ("default", IEMOCAP6, "happy", "happy"),
    ("default", IEMOCAP6, "Joy", "happy"),
    ("default", IEMOCAP6, "Excited", "excited"),
    ("default", IEMOCAP6, "frustration", "frustrated"),
    ("default", IEMOCAP6, "The speaker sounds annoyed.", "frustrated"),
    ("default", IEMOCAP6, "ang", "angry"),
    ("default", IEMOCAP6, "neu", "neutral"),
    ("default", IEMOCAP4, "excited", "happy"),
    ("default", IEMOCAP4, "anger", "angry"),
    ("default", IEMOCAP4, "sadness", "sad"),
    ("default", IEMOCAP4, "surprise", U),
    # --- MELD sentiment
    ("default", MELD_SENT, "Positive", "positive"),
    ("default", MELD_SENT, "negative.", "negative"),
    ("default", MELD_SENT, "Sentiment: neutral", "neutral"),
    ("default", MELD_SENT, "neither positive nor negative", "neutral"),
    ("default", MELD_SENT, '{"sentiment": "POSITIVE"}', "positive"),
    ("default", MELD_SENT, "积极", "positive"),
    ("default", MELD_SENT, "The tone is hard to read.", U),
    # --- MUStARD sarcasm
    ("default", MUSTARD, "sarcastic", "sarcastic"),
    ("default", MUSTARD, "Sarcastic.", "sarcastic"),
    ("default", MUSTARD, "sincere", "sincere"),
    ("default", MUSTARD, "Yes", "sarcastic"),
    ("default", MUSTARD, "No.", "sincere"),
    ("default", MUSTARD, "Yes, the speaker is clearly being sarcastic.", "sarcastic"),
    ("default", MUSTARD, "not sarcastic", "sincere"),
    ("default", MUSTARD, "Not sarcastic.", "sincere"),
    ("default", MUSTARD, "The speaker isn't being sarcastic here.", "sincere"),
    ("default", MUSTARD, "I don't think the speaker is sarcastic.", "sincere"),
    ("default", MUSTARD, "non-sarcastic", "sincere"),
    ("default", MUSTARD, "This is irony.", "sarcastic"),
    ("default", MUSTARD, '{"sarcasm": true}', "sarcastic"),
    ("default", MUSTARD, '{"sarcastic": false}', "sincere"),
    ("default", MUSTARD, '{"answer": "sincere"}', "sincere"),
    ("default", MUSTARD, "Answer: Yes", "sarcastic"),
    ("default", MUSTARD, "Not sincere at all.", "sarcastic"),
    ("default", MUSTARD, "Maybe?", U),
    # --- UR-FUNNY humour
    ("default", URFUNNY, "humorous", "humorous"),
    ("default", URFUNNY, "not humorous", "not humorous"),
    ("default", URFUNNY, "Not Humorous", "not humorous"),
    ("default", URFUNNY, "not_humorous", "not humorous"),
    ("default", URFUNNY, "Funny", "humorous"),
    ("default", URFUNNY, "It's not funny.", "not humorous"),
    ("default", URFUNNY, "yes", "humorous"),
    ("default", URFUNNY, "No", "not humorous"),
    ("default", URFUNNY, "non-humorous", "not humorous"),
    ("default", URFUNNY, "The line isn't humorous.", "not humorous"),
    ("default", URFUNNY, '{"humorous": true}', "humorous"),
    ("default", URFUNNY, "I'm not sure.", U),
    # --- MOSI scores
    ("default", MOSI, "2", 2.0),
    ("default", MOSI, "-1.4", -1.4),
    ("default", MOSI, "+1.5", 1.5),
    ("default", MOSI, "\u22122.0", -2.0),
    ("default", MOSI, "Score: -2.6", -2.6),
    ("default", MOSI, "**Sentiment score:** 1.8", 1.8),
    ("default", MOSI, '{"score": 1.2}', 1.2),
    ("default", MOSI, '{"sentiment_score": "-0.8"}', -0.8),
    ("default", MOSI, "On a scale from -3 to 3, I'd rate it 1.5", 1.5),
    ("default", MOSI, "On a scale from -3 (very negative) to +3 (very positive), this is 2.", 2.0),
    ("default", MOSI, "The speaker talks about 2 movies. Final answer: -1.0", -1.0),
    ("default", MOSI, "I'd give it a 0.5.", 0.5),
    ("default", MOSI, "5", U),
    ("default", MOSI, "The sentiment is positive.", U),
    ("default", MOSI, "", U),
    ("default", MOSI, "<think>so maybe 2</think>-0.5", -0.5),
    ("default", MOSI, "3.0", 3.0),
    ("default", MOSI, "-3", -3.0),
    ("default", MOSI, "Qwen2 says 1.0", 1.0),
    ("sentiment_score_lenient", MOSI, "positive", 1.5),
    ("sentiment_score_lenient", MOSI, "Very negative", -3.0),
    ("sentiment_score_lenient", MOSI, "2.2 (positive)", 2.2),
    ("sentiment_score_lenient", MOSI, "not positive", U),
    # --- SIMS scores
    ("default", SIMS, "0.6", 0.6),
    ("default", SIMS, "-0.8", -0.8),
    ("default", SIMS, "Score: 1", 1.0),
    ("default", SIMS, "2", U),
    ("default", SIMS, "Between -1 and 1 I would say 0.4", 0.4),
    ("default", SIMS, '{"score": -1.5}', U),
    ("sentiment_score_lenient", SIMS, "positive", 0.5),
]


@pytest.mark.parametrize(
    ("prompt", "info", "text", "expected"), CASES, ids=[f"{c[1].corpus}:{c[2][:30]!r}" for c in CASES]
)
def test_parse_table(prompt, info, text, expected):
    parsed = load_prompt(prompt, info).parse(text, info)
    if expected is None or isinstance(expected, Unread):
        assert parsed.value is None and parsed.ok is False, parsed
        assert parsed.reason
        assert parsed.unread in UNREAD_REASONS
        if isinstance(expected, Unread):
            assert parsed.unread == expected, parsed
    else:
        assert parsed.ok, parsed
        if isinstance(expected, float):
            assert parsed.value == pytest.approx(expected)
        else:
            assert parsed.value == expected


def test_table_is_big_and_covers_failures():
    assert len(CASES) >= 60
    assert sum(c[3] is None for c in CASES) >= 10


NASTY = [
    None,
    "",
    "{",
    "}{",
    '{"emotion": }',
    "{" * 5000,
    "[" * 5000 + "]" * 5000,
    "<think>" * 100,
    "\x00\x01\x02",
    "😀" * 1000,
    "-" * 10000,
    "1e309",
    "nan",
    "inf",
    "-.-.-.",
    "no " * 5000 + "joy",
    '{"emotion": ["joy", "anger"]}',
    '{"emotion": {"label": "anger"}}',
    '{"emotion": null}',
    '{"score": NaN}',
    '{"score": 1e400}',
    '{"score": true}',
    "a" * 200_000,
]


@pytest.mark.parametrize("info", [MELD, MUSTARD, URFUNNY, MOSI, SIMS], ids=lambda i: i.corpus)
def test_never_raises(info):
    prompt = load_prompt("default", info)
    for text in NASTY:
        parsed = prompt.parse(text, info)  # type: ignore[arg-type]
        assert parsed.ok == (parsed.value is not None)
        if info.score_range and parsed.ok:
            lo, hi = info.score_range
            assert lo <= parsed.value <= hi


def test_json_list_and_nested_values():
    p = load_prompt("default", MELD)
    assert p.parse('{"emotion": ["joy", "joy"]}', MELD).value == "joy"
    assert p.parse('{"emotion": ["joy", "anger"]}', MELD).unread == "ambiguous"
    assert p.parse('{"result": {"emotion": "anger"}}', MELD).value == "anger"


def test_reason_says_how_it_matched():
    p = load_prompt("default", MELD)
    assert "synonym" in p.parse("happy", MELD).reason
    assert "json" in p.parse('{"emotion": "joy"}', MELD).reason
    assert "range" in load_prompt("default", MOSI).parse("7", MOSI).reason


def test_canonical_label_beats_synonym_and_order_breaks_ties():
    m = LabelMatcher.build(("happy", "excited"), {"happy": ["excited", "joy"], "excited": ["joy"]})
    assert parse_label("excited", m).value == "excited"  # canonical name wins over happy's synonym
    assert parse_label("joy", m).value == "happy"  # both list it: the earlier label wins


def test_out_of_range_clip_policy():
    from affectbench.prompts.parsing import ScorePolicy, parse_score

    assert parse_score("5", ScorePolicy(-3, 3, out_of_range="clip")).value == 3
    assert parse_score("5", ScorePolicy(-3, 3)).value is None
