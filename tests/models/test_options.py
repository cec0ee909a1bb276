"""Option scoring: calibration and decision rules (models.options), checked against the formulas of
lm-evaluation-harness (acc_norm) and Zhao et al. 2021 (contextual calibration) written out here in
probability space, and the openai backend's first-token matching."""

import math

import numpy as np
import pytest

from affectbench.core.errors import ConfigError
from affectbench.core.types import Generation
from affectbench.models.openai import first_token_scores
from affectbench.models.options import (
    ScoringFailed,
    apply_decision,
    calibrate,
    content_free_prior,
    decide,
)

GRID = {"-3.0": -5.0, "-2.0": -4.2, "-1.0": -3.1, "0.0": -1.2, "1.0": -1.0, "2.0": -2.5, "3.0": -1.5}


def softmax(x):
    x = np.asarray(x, dtype=float)
    e = np.exp(x - x.max())
    return e / e.sum()


def test_uncalibrated_expected_and_argmax():
    p = softmax(list(GRID.values()))
    want = float(np.dot(p, [float(k) for k in GRID]))
    text, detail = decide(GRID, "auto")
    assert detail == {
        "decision": "expected",
        "expected": pytest.approx(want, rel=1e-12),
        "value": pytest.approx(want, rel=1e-12),
    }
    assert float(text) == pytest.approx(want, rel=1e-5)  # display only: the value is detail["value"]
    assert decide(GRID, "argmax")[:1] == ("1.0",) and decide(GRID, "argmax")[1]["value"] == 1.0
    assert decide({"positive": -0.1, "negative": -2.0}, "auto") == (
        "positive",
        {"decision": "argmax", "value": "positive"},
    )


def test_an_expected_value_near_zero_keeps_its_sign():
    """Issue 21: -0.0007 must not become "-0.00" -> +0.0 (which flips Has0)."""
    grid = {"-1.0": -5.0, "0.0": 0.0, "1.0": -5.01}
    p = softmax(list(grid.values()))
    want = float(np.dot(p, [-1.0, 0.0, 1.0]))
    assert -0.001 < want < 0  # what a 2-decimal text would have turned into +0.0
    _, detail = decide(grid, "expected")
    assert detail["value"] == pytest.approx(want, rel=1e-12) and detail["value"] < 0


def test_length_normalised_is_lm_eval_acc_norm():
    # lm-evaluation-harness: acc_norm = argmax(lls / completion_len), completion_len = len(choice) in characters
    choices = list(GRID)
    lls = np.array(list(GRID.values()))
    want = choices[int(np.argmax(lls / np.array([float(len(c)) for c in choices])))]
    assert decide(GRID, "argmax", "length")[0] == want
    assert calibrate({"ab": -2.0, "abcd": -2.0}, "length") == {"ab": -1.0, "abcd": -0.5}


def test_contextual_calibration_is_zhao_et_al():
    content_free = [
        {k: v + (0.8 if k.startswith("-") else 0) for k, v in GRID.items()},
        {k: v * 0.5 for k, v in GRID.items()},
        {k: -1.0 for k in GRID},
    ]
    prior = content_free_prior(content_free)
    # Zhao et al. 2021: p_cf = mean over content-free inputs of the normalised option probabilities;
    # W = diag(p_cf)^-1, b = 0; q = normalise(W p)
    p_cf = np.mean([softmax(list(r.values())) for r in content_free], axis=0)
    assert [math.exp(prior[k]) for k in GRID] == pytest.approx(list(p_cf), rel=1e-12)
    p = softmax(list(GRID.values()))
    q = (p / p_cf) / (p / p_cf).sum()
    values = [float(k) for k in GRID]
    text, detail = decide(GRID, "expected", "contextual", prior)
    assert detail["expected"] == pytest.approx(float(np.dot(q, values)), rel=1e-10)
    assert decide(GRID, "argmax", "contextual", prior)[0] == list(GRID)[int(np.argmax(q))]


def test_undecidable_scores_fail_and_never_fall_back_to_the_first_option():
    with pytest.raises(ScoringFailed):
        decide({"a": -math.inf, "b": -math.inf})
    with pytest.raises(ScoringFailed, match="tie"):
        decide({"a": -1.0, "b": -1.0}, "argmax")
    with pytest.raises(ScoringFailed, match="prior"):
        decide(GRID, "auto", "contextual", None)
    with pytest.raises(ConfigError, match="numeric"):
        decide({"joy": -1.0, "anger": -2.0}, "expected")
    g = Generation(text="a", scores={"a": -math.inf, "b": -math.inf})
    apply_decision(g, "auto", "none")
    assert g.text == "" and g.meta["unread_reason"] == "scoring_failed"
    g = Generation(text="", scores=dict(GRID))
    apply_decision(g, "expected", "none")
    apply_decision(g, "argmax", "none")  # a second decision leaves nothing of the first behind
    assert g.text == "1.0" and "expected" not in g.meta and g.meta["decision_rule"] == "argmax"


def test_openai_first_token_matching_refuses_shared_and_missing_first_tokens():
    top = [{"token": "-", "logprob": -0.5}, {"token": "1", "logprob": -1.0}, {"token": "pos", "logprob": -2.0}]
    scores, why = first_token_scores(top, ["-3.0", "-2.0", "1.0"])
    assert why and "share the first token '-'" in why
    scores, why = first_token_scores(top, ["positive", "negative"])
    assert why is None and scores == {"positive": -2.0, "negative": -math.inf}
    scores, why = first_token_scores(top, ["joy", "anger"])
    assert why and "none of the options" in why
