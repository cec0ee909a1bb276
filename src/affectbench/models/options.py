"""Option scoring (`generation.mode: score`): from stored per-option log-likelihoods to an answer.

Every backend returns, per sample, `scores[option] = log P(option | prompt)` summed over the option's
tokens (the `openai` backend: the first token's log-prob). What the answer is follows from two named
settings, applied here — at parse time, from the stored scores — so `rescore` can switch them
without a model call:

- **calibration** (`generation.calibration`, part of the run id because `contextual` needs extra
  model calls):
  - `none`: the summed log-likelihoods as they are. They favour options with fewer tokens ("3"
    over "-3").
  - `length`: each score divided by the option's length in characters, as lm-evaluation-harness's
    `acc_norm` does (`ll / len(continuation)`; characters, not tokens, so tokenizers compare).
  - `contextual`: contextual calibration (Zhao et al. 2021, "Calibrate Before Use", §4): the options
    are scored once per run on content-free inputs — the run's own template, wording and modalities,
    with the transcript "N/A", "" and "[MASK]" and content-free media (`engine.calibration`) in place
    of the sample's — their probabilities over the options averaged into a prior p_cf, and each
    sample's option probabilities divided by it (W = diag(p_cf)^-1, b = 0): score = log p − log p_cf.
  - `batch`: batch calibration (Zhou et al. 2024, "Batch Calibration", arXiv 2309.17249, eq. 4 with
    the whole evaluated set as the batch): the prior is the mean option probability over the run's
    own samples, divided out as above. No extra model call; computed when the run is scored.
  A prior of −inf or NaN for an option (an `openai` backend whose content-free top-k lacked it) would
  make that option impossible for the whole run: `check_prior` refuses it, naming the option.
- **decision** (`generation.decision`, part of the run id unless `auto`): `argmax` takes the best
  option; `expected` (numeric grids only) the expected value Σ softmax(score)·value; `auto` is
  `expected` for a numeric grid and `argmax` for labels. The decided value is stored as a value
  (`meta["decided"]`), never written as text and parsed back.

The expected value of a *calibrated* distribution is this project's extension: Zhao et al. and Zhou
et al. calibrate in order to take the argmax; the expected value over a calibrated regression grid
has no result in either paper behind it and is reported as what it is.

An answer cannot be decided — `scoring_failed` — when no option has a finite score, or when `argmax`
finds two best options with the same score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..core.errors import ConfigError

DECISIONS = ("auto", "argmax", "expected")
CALIBRATIONS = ("none", "length", "contextual", "batch")
CONTENT_FREE = ("N/A", "", "[MASK]")  # Zhao et al. 2021's content-free inputs


def check_rule(decision: str, options: Sequence[str]) -> None:
    """ConfigError unless `decision` is a known rule that applies to `options`."""
    if decision not in DECISIONS:
        raise ConfigError(f"unknown decision rule {decision!r}; use one of {', '.join(DECISIONS)}")
    if decision == "expected" and numeric_values(options) is None:
        raise ConfigError(f"generation.decision 'expected' needs numeric options (a score grid); got {list(options)}")


class ScoringFailed(ValueError):
    """The stored scores cannot decide an answer (no finite score, or a tie under argmax)."""


def numeric_values(options: Sequence[str]) -> list[float] | None:
    """The options as floats when every one is a finite number (a regression grid), else None."""
    try:
        values = [float(o) for o in options]
    except ValueError:
        return None
    return values if all(math.isfinite(v) for v in values) else None


def log_normalise(scores: Mapping[str, float]) -> dict[str, float]:
    """log softmax over the options: log P(option | prompt, one of the options). -inf stays -inf."""
    finite = [v for v in scores.values() if math.isfinite(v)]
    if not finite:
        raise ScoringFailed("no option has a finite score")
    top = max(finite)
    z = top + math.log(sum(math.exp(v - top) for v in finite))
    return {k: (v - z if math.isfinite(v) else -math.inf) for k, v in scores.items()}


def content_free_prior(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """log p_cf: the option probabilities of each content-free input (normalised over the options),
    averaged over the inputs, in log space (Zhao et al. 2021, §4). The same mean over a run's own
    samples is batch calibration's prior (Zhou et al. 2024)."""
    if not runs:
        raise ScoringFailed("calibration needs at least one score set to estimate its prior")
    probs = [{k: math.exp(v) for k, v in log_normalise(r).items()} for r in runs]
    keys = list(runs[0])
    mean = {k: sum(p.get(k, 0.0) for p in probs) / len(probs) for k in keys}
    return {k: math.log(v) if v > 0 else -math.inf for k, v in mean.items()}


def check_prior(prior: Mapping[str, float], source: str) -> None:
    """ConfigError naming the option whose prior is −inf or NaN: divided out, it could never be chosen
    (or would poison every score) for the whole run."""
    for option, v in prior.items():
        if not math.isfinite(v):
            raise ConfigError(
                f"{source}: the prior of option {option!r} is {v} (its probability on the calibration inputs is "
                "0 or undefined — an `openai` backend returns it when the option is absent from the top-k "
                "log-probs); calibrating with it would rule the option out for every sample. Use "
                "another calibration, or a backend that scores every option"
            )


def calibrate(
    scores: Mapping[str, float], calibration: str, prior: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Calibrated option scores (see the module doc). `prior`: `content_free_prior` output, for `contextual`."""
    if calibration == "none":
        return dict(scores)
    if calibration == "length":
        return {k: v / max(len(k), 1) for k, v in scores.items()}
    if calibration in ("contextual", "batch"):
        if not prior:
            raise ScoringFailed(f"{calibration} calibration has no prior for this sample")
        if set(prior) != set(scores):
            raise ScoringFailed(f"the content-free prior covers {sorted(prior)}, the scores {sorted(scores)}")
        logp = log_normalise(scores)
        return {k: (logp[k] - prior[k]) if math.isfinite(prior[k]) else -math.inf for k in scores}
    raise ConfigError(f"unknown calibration {calibration!r}; use one of {', '.join(CALIBRATIONS)}")


def decide(
    scores: Mapping[str, float],
    decision: str = "auto",
    calibration: str = "none",
    prior: Mapping[str, float] | None = None,
) -> tuple[str, dict[str, float | str]]:
    """(answer text, details) from per-option scores. The text is the chosen option (argmax) or the
    expected value (expected), for display; details["value"] is the decided value itself (the
    option, as a float on a numeric grid, or the expected value) and details["decision"] the rule
    applied. Raises ScoringFailed when no answer can be decided, and
    ConfigError for an unknown rule or `expected` over options that are not all numbers."""
    if decision not in DECISIONS:
        raise ConfigError(f"unknown decision rule {decision!r}; use one of {', '.join(DECISIONS)}")
    if not scores:
        raise ScoringFailed("no option scores")
    cal = calibrate(scores, calibration, prior)
    options = list(cal)
    values = numeric_values(options)
    rule = decision if decision != "auto" else ("expected" if values is not None else "argmax")
    if rule == "expected":
        if values is None:
            raise ConfigError(f"decision 'expected' needs numeric options (a score grid); got {options}")
        logp = log_normalise(cal)
        expected = sum(math.exp(logp[o]) * v for o, v in zip(options, values, strict=True))
        return f"{expected:.6g}", {"decision": rule, "expected": expected, "value": expected + 0.0}
    finite = [o for o in options if math.isfinite(cal[o])]
    if not finite:
        raise ScoringFailed("no option has a finite score")
    best = max(cal[o] for o in finite)
    top = [o for o in finite if cal[o] == best]
    if len(top) > 1:
        raise ScoringFailed(f"options {top} tie at the best score {best:.4g}")
    return top[0], {"decision": rule, "value": float(top[0]) if values is not None else top[0]}


def apply_decision(generation, decision: str, calibration: str, prior: Mapping[str, float] | None = None) -> None:
    """Set a scored Generation's `text` to the decided answer and record how in its meta: `decision`
    (the rule asked for), `decision_rule` (the rule applied), `decided` (the decided value),
    `calibration`, `score_prior` (contextual) and, on failure, `unread_reason` "scoring_failed" with
    `scoring_error` (text left empty). Batch calibration without its prior yet (while the run is still
    answering) decides uncalibrated, provisionally: scoring the run re-decides with the batch prior.
    Generations with an error or no scores are left as they are."""
    if generation is None or generation.error or generation.scores is None:
        return
    meta = generation.meta
    for stale in ("decision_rule", "expected", "unread_reason", "scoring_error", "score_prior", "decided"):
        meta.pop(stale, None)  # from an earlier decision on the same scores
    meta.update(decision=decision, calibration=calibration)
    if prior is not None and calibration == "contextual":
        meta["score_prior"] = dict(prior)
    used = "none" if calibration == "batch" and prior is None else calibration
    try:
        text, detail = decide(generation.scores, decision, used, prior)
    except ScoringFailed as e:
        generation.text = ""
        meta.update(unread_reason="scoring_failed", scoring_error=str(e))
        return
    generation.text = text
    meta["decision_rule"] = detail["decision"]
    meta["decided"] = detail["value"]
    if "expected" in detail:
        meta["expected"] = detail["expected"]


def score_generation(scores: dict[str, float], decision: str = "auto", **fields) -> Generation:  # noqa: F821
    """A backend's score-mode Generation: the raw per-option scores and the uncalibrated decision's
    text (the runner re-decides with the run's calibration). `fields`: other Generation fields."""
    from ..core.types import Generation

    g = Generation(text="", scores=scores, **fields)
    apply_decision(g, decision, "none")
    return g
