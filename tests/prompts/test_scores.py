"""Score answers (MOSI/MOSEI [-3, 3], SIMS [-1, 1]) from issue 12: minus signs, restated scales,
cues, enumerators/counts/years, closing numbers and `ambiguous`. Right values are the issue's."""

from __future__ import annotations

import unicodedata

import pytest

from affectbench.prompts import load_prompt
from affectbench.prompts.parsing import ScorePolicy, parse_score

from ._infos import MOSEI, MOSI, SIMS


def _parse(info, text):
    return load_prompt("default", info).parse(text, info)


def _minus_like() -> list[str]:
    """Every character Unicode names a dash or a minus sign, enumerated from unicodedata (not from
    the parser): dash punctuation (Pd) but the CJK wave dashes, and '… MINUS SIGN' / super- and
    subscript minus, minus the compound operators (±, ∓, ⩁)."""
    out = []
    for cp in range(0x110000):
        ch = chr(cp)
        name = unicodedata.name(ch, "")
        if unicodedata.category(ch) == "Pd" and "WAVE" not in name and "WAVY" not in name:
            out.append(ch)
        elif (name.endswith("MINUS SIGN") or name in ("SUPERSCRIPT MINUS", "SUBSCRIPT MINUS")) and not (
            "PLUS" in name or "WITH" in name
        ):
            out.append(ch)
    return out


MINUS_LIKE = _minus_like()
# The ones the issue and people name, so the enumeration above cannot silently miss them.
NAMED = "\u2212\uff0d\u2012\u2013\u2014\u2015\ufe63\u2010\u2011\u02d7\u2796\u207b\u208b"


def test_enumeration_covers_the_named_minus_signs():
    assert set(NAMED) <= set(MINUS_LIKE)
    assert len(MINUS_LIKE) >= 30


@pytest.mark.parametrize("ch", MINUS_LIKE, ids=lambda c: f"U+{ord(c):04X}")
def test_every_unicode_minus_is_a_minus(ch):
    assert _parse(MOSI, f"Score: {ch}1.5").value == pytest.approx(-1.5)
    assert _parse(MOSI, f"{ch}2").value == pytest.approx(-2.0)
    assert _parse(SIMS, f"情感得分：{ch}0.6").value == pytest.approx(-0.6)


@pytest.mark.parametrize("ch", ["\u301c", "\u3030", "~"], ids=lambda c: f"U+{ord(c):04X}")
def test_wave_dashes_are_ranges_not_minus(ch):
    assert _parse(MOSI, f"Score: {ch}1.5").value == pytest.approx(1.5)


# (dataset, answer, right value; a str = unread for that reason)
CASES = [
    # issue 12, observed cases
    (MOSI, "Score: \uff0d1.5", -1.5),
    (SIMS, "情感得分：\uff0d0.6", -0.6),
    (MOSI, "Rating (-3 to 3): 1.5", 1.5),
    (MOSI, "Score: -3 … final: -1", -1.0),
    (MOSI, "1. The face frowns. 2. The voice is flat and low. Overall, around -2", -2.0),
    (MOSI, "1. The face frowns.\n2. The voice is flat and low.\n3. The words are mild.\n-2", -2.0),
    # restated scales are never the answer
    (MOSI, "On a scale from -3 (strongly negative) to 3 (strongly positive): 2.4", 2.4),
    (MOSI, "Rating (−3 to +3): −0.5", -0.5),
    (MOSI, "Score [-3, 3]: 1", 1.0),
    (MOSI, "-3 means strongly negative and 3 means strongly positive. I'd give it 1.0", 1.0),
    (MOSI, "I'd rate it 2 out of 3.", 2.0),
    (MOSI, "1.5/3", 1.5),
    (SIMS, "从-1到1，我给0.4", 0.4),
    (SIMS, "在-1到1的范围内，得分为-0.2", -0.2),
    (SIMS, "评分（-1到1）：0.8", 0.8),
    (MOSI, "From -3 to 3.", "no_label"),
    # an explicit cue wins over earlier numbers; the last final cue wins
    (MOSI, "The text alone suggests 2, but the tone is sarcastic. Final answer: -1.5", -1.5),
    (MOSI, "The face suggests -2 and the voice 1. Overall: 0.5", 0.5),
    (MOSI, "Score: 2. Hmm, the frown matters more. Final score: -1", -1.0),
    (MOSI, "Answer: -2.2", -2.2),
    (SIMS, "文本偏积极（0.6），语音平淡（0）。综合得分：0.4", 0.4),
    (SIMS, "最终答案：-0.8", -0.8),
    (SIMS, "分数：负0.6", -0.6),
    (SIMS, "总体来看，0.2", 0.2),
    (MOSEI, "Sentiment score: +1.2 (mildly positive)", 1.2),
    # enumerators, counts, years, percentages are not scores
    (MOSI, "The speaker talks about 2 movies and 3 actors, rather positively: 1.5", 1.5),
    (MOSI, "In 2019 the speaker saw it; 0.5", 0.5),
    (MOSI, "I am 80% sure it is -1", -1.0),
    (SIMS, "他说了3个理由，情感得分是0.6", 0.6),
    (MOSI, "(1) smile (2) warm voice -> 2.0", 2.0),
    # a number opening the answer (the asked format) beats numbers in the explanation after it
    (MOSI, "-1.5\n\nThe speaker's tone is negative, somewhere around -1 to -2.", -1.5),
    (MOSI, "1.0 (mildly positive): he mentions 3 things he liked and 1 he did not.", 1.0),
    (SIMS, "0.4。说话者语气比较积极，但也有-0.2的消极成分", 0.4),
    (MOSI, "2.0\n\nOn reflection the frown matters. Final answer: 0.5", 0.5),
    # with no cue, the number closing the answer
    (MOSI, "The speaker sounds disappointed, but not strongly.\n\n-1.0", -1.0),
    (MOSI, "Slightly negative: -0.5.", -0.5),
    (MOSI, "2.2 (positive)", 2.2),
    (MOSI, "-1, -1, -1", -1.0),
    # two different numbers with nothing to choose between them
    (MOSI, "It is either 1 or 2.", "ambiguous"),
    (MOSI, "Score: 1 or 2", "ambiguous"),
    (MOSI, "Somewhere in 1-2.", "ambiguous"),
    (MOSI, "The face says -2 and the voice says 1, I can't decide.", "ambiguous"),
    (SIMS, "可能是0.2，也可能是0.4，难以判断", "ambiguous"),
    # out of range, refusals, empty, truncated, reasoning only
    (MOSI, "Score: 5", "out_of_range"),
    (SIMS, "Score: 2", "out_of_range"),
    (MOSI, "I'm sorry, I cannot rate this clip.", "refused"),
    (SIMS, "抱歉，我无法判断。", "refused"),
    (MOSI, "", "empty"),
    (MOSI, "<think>the face looks tense, maybe -1", "truncated"),
    (MOSI, "<think>the face looks tense, maybe -1</think>", "reasoning_only"),
    (MOSI, "positive", "no_label"),
]


@pytest.mark.parametrize(("info", "text", "expected"), CASES, ids=[f"{c[0].corpus}:{c[1][:40]!r}" for c in CASES])
def test_score_table(info, text, expected):
    parsed = _parse(info, text)
    if isinstance(expected, str):
        assert not parsed.ok and parsed.value is None, parsed
        assert parsed.unread == expected, parsed
    else:
        assert parsed.ok, parsed
        assert parsed.value == pytest.approx(expected)


def test_full_width_digits_and_punctuation():
    assert _parse(SIMS, "得分：－０．６").value == pytest.approx(-0.6)


def test_clip_policy_still_clips_the_chosen_number():
    assert parse_score("Final: 4.5", ScorePolicy(-3, 3, out_of_range="clip")).value == 3
    assert parse_score("Final: 4.5", ScorePolicy(-3, 3)).unread == "out_of_range"
