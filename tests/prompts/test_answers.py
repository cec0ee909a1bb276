"""answer() ↔ parse() round trips over every label and every grid point; options for scoring."""

from __future__ import annotations

import math

import pytest

from affectbench.core.errors import ConfigError, DatasetError
from affectbench.prompts import list_prompts, load_prompt

from ._infos import ALL_CLASSIFICATION, ALL_REGRESSION, MELD, MOSI, SIMS

ANSWER_TEMPLATES = [n for n in list_prompts() if not n.startswith("describe")]


def _fits(name: str, info) -> bool:
    return ("score" in name) == (info.task.value == "regression")


PAIRS = [(n, i) for n in ANSWER_TEMPLATES for i in ALL_CLASSIFICATION + ALL_REGRESSION if _fits(n, i)]


@pytest.mark.parametrize(("name", "info"), PAIRS, ids=[f"{n}-{i.corpus}" for n, i in PAIRS])
def test_every_option_round_trips(name, info):
    prompt = load_prompt(name, info)
    options = prompt.options(info)
    assert options and len(set(options)) == len(options)
    for option in options:
        parsed = prompt.parse(option, info)
        assert parsed.ok, (option, parsed)
        assert prompt.answer(parsed.value, info) == option


@pytest.mark.parametrize("info", ALL_CLASSIFICATION, ids=lambda i: i.corpus)
def test_every_label_round_trips(info):
    prompt = load_prompt("default", info)
    assert prompt.options(info) == list(info.labels)
    for label in info.labels:
        text = prompt.answer(label, info)
        assert text == label
        assert prompt.parse(text, info).value == label


def test_regression_grids():
    mosi = load_prompt("default", MOSI)
    assert mosi.options(MOSI) == ["-3.0", "-2.0", "-1.0", "0.0", "1.0", "2.0", "3.0"]
    sims = load_prompt("default", SIMS)
    assert sims.options(SIMS) == ["-1.0", "-0.8", "-0.6", "-0.4", "-0.2", "0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    for x in sims.grid(SIMS):
        assert sims.parse(sims.answer(x, SIMS), SIMS).value == x


@pytest.mark.parametrize("info", ALL_REGRESSION, ids=lambda i: i.corpus)
def test_score_answers_on_a_fine_grid_round_trip(info):
    prompt = load_prompt("default", info)
    lo, hi = info.score_range
    for i in range(0, 601):
        x = lo + (hi - lo) * i / 600
        text = prompt.answer(x, info)
        assert text == f"{round(x, 1):.1f}".replace("-0.0", "0.0")
        value = prompt.parse(text, info).value
        assert value == pytest.approx(round(x, 1))
        assert prompt.answer(value, info) == text  # stable: answer(parse(answer(x))) == answer(x)


def test_score_answer_formatting_edges():
    p = load_prompt("default", MOSI)
    assert p.answer(-0.04, MOSI) == "0.0"
    assert p.answer(-0.0, MOSI) == "0.0"
    assert p.answer(2.6666666, MOSI) == "2.7"
    assert p.answer(7, MOSI) == "3.0"  # clipped to the scale
    assert p.answer("1.25", MOSI) == "1.2"  # half to even on the binary value
    with pytest.raises(DatasetError):
        p.answer(math.nan, MOSI)
    with pytest.raises(DatasetError):
        p.answer("positive", MOSI)


def test_label_answer_rejects_unknown_targets():
    p = load_prompt("default", MELD)
    assert p.answer("Joy", MELD) == "joy"
    with pytest.raises(DatasetError, match="not one of its labels"):
        p.answer("happy", MELD)


def test_elicitation_templates_have_no_answers():
    p = load_prompt("describe", MELD)
    assert p.options(MELD) == []
    with pytest.raises(ConfigError, match="elicits knowledge"):
        p.answer("joy", MELD)
