"""Snapshot tests: every packaged template rendered for representative samples.

Expected renderings live in tests/prompts/snapshots/<case>.txt. After an intended wording
change, regenerate them with

    AFFECTBENCH_UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/prompts/test_snapshots.py

and review the diff: a changed snapshot means changed model inputs (bump the template's version).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from affectbench.core.types import Message, Sample, Turn
from affectbench.prompts import list_prompts, load_prompt

from ._infos import IEMOCAP6, MELD, MELD_SENT, MOSI, MUSTARD, SIMS, URFUNNY

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("AFFECTBENCH_UPDATE_SNAPSHOTS") == "1"

KNOWLEDGE = (
    "Face: the corners of the mouth rise and the eyes narrow. Voice: pitch rises at the end, loud. "
    "Words: an exclamation. Conflicts: none."
)


def dump(messages: list[Message]) -> str:
    """A stable text form of a conversation: roles, media parts with paths and spans, then text."""
    out = []
    for m in messages:
        out.append(f"=== {m.role}")
        for p in m.parts:
            if p.kind == "text":
                out.append(p.text or "")
            else:
                out.append(f"<{p.kind} path={p.path} span={p.span}>")
    return "\n".join(out) + "\n"


def _meld_sample() -> Sample:
    return Sample(
        id="dia7_utt4",
        transcript="Oh my God! You got the job?",
        target="surprise",
        media={"video": "/data/MELD/test/dia7_utt4.mp4"},
        group="dia7",
        context=[Turn("So, I have some news.", "Rachel"), Turn("They called me back this morning.", "Rachel")],
        speaker="Monica",
    )


def _mosi_sample() -> Sample:
    return Sample(
        id="03bSnISJMiM$_$1",
        transcript="this movie was honestly one of the best i have seen",
        target=2.4,
        media={"video": "/data/MOSI/Raw/03bSnISJMiM/1.mp4"},
        group="03bSnISJMiM",
    )


def _sims_sample() -> Sample:
    return Sample(
        id="video_0001$_$0001",
        transcript="我真的很喜欢这个地方",
        target=0.8,
        media={"video": "/data/SIMS/Raw/video_0001/0001.mp4"},
    )


def _iemocap_sample() -> Sample:
    return Sample(
        id="Ses01F_impro01_F000",
        transcript="Excuse me.",
        target="neutral",
        media={"video": "/data/IEMOCAP/Ses01F_impro01.avi", "audio": "/data/IEMOCAP/Ses01F_impro01_F000.wav"},
        span=(6.2901, 8.2357),
        speaker="Ses01_F",
        meta={"span_applies_to": "video"},
    )


def _mustard_sample() -> Sample:
    return Sample(
        id="1_60",
        transcript="Oh, yeah, because that always works out so well.",
        target="sarcastic",
        media={"video": "/data/MUStARD/utterances_final/1_60.mp4"},
        context=[Turn("I'm going to ask her out again.", "LEONARD"), Turn("Third time's the charm.", "HOWARD")],
        speaker="SHELDON",
    )


def _urfunny_sample() -> Sample:
    return Sample(
        id="1043",
        transcript="and that's why I never trust a dog with a calendar",
        target="humorous",
        media={"video": "/data/URFUNNY/1043.mp4"},
        context=[Turn("So I got a puppy last year."), Turn("It ate my planner.")],
    )


def _cases():
    cases = []
    for name in list_prompts():
        if "score" in name:
            cases.append((name, MOSI, _mosi_sample(), "TAV", None, None))
            cases.append((name, SIMS, _sims_sample(), "TAV", None, None))
        elif name.startswith("sarcasm"):
            cases.append((name, MUSTARD, _mustard_sample(), "TAV", None, None))
        elif name.startswith("humour"):
            cases.append((name, URFUNNY, _urfunny_sample(), "TAV", None, None))
        elif name.startswith("sentiment_polarity"):
            s = _meld_sample()
            s.target = "positive"
            cases.append((name, MELD_SENT, s, "TAV", None, None))
        else:
            cases.append((name, MELD, _meld_sample(), "TAV", None, None))
    # variations: knowledge slot, system prompt, ablations, separate audio with a video-only span
    cases += [
        ("emotion", MELD, _meld_sample(), "TAV", KNOWLEDGE, "You are an expert in affective computing."),
        ("emotion", MELD, _meld_sample(), "A", KNOWLEDGE, None),
        ("emotion", MELD, _meld_sample(), "T", None, None),
        ("emotion", MELD, _meld_sample(), "V", None, None),
        ("emotion", IEMOCAP6, _iemocap_sample(), "TAV", None, None),
        ("emotion_fewshot", IEMOCAP6, _iemocap_sample(), "TA", None, None),
        ("sentiment_score", MOSI, _mosi_sample(), "AV", KNOWLEDGE * 20, None),
        ("describe", MELD, _meld_sample(), "AV", None, None),
    ]
    out = []
    for name, info, sample, mods, knowledge, system in cases:
        tag = f"{name}--{info.corpus}--{mods}" + ("--k" if knowledge else "") + ("--sys" if system else "")
        if knowledge and len(knowledge) > 1500:
            tag += "long"
        out.append(pytest.param(name, info, sample, mods, knowledge, system, id=tag))
    return out


@pytest.mark.parametrize(("name", "info", "sample", "mods", "knowledge", "system"), _cases())
def test_snapshot(request, name, info, sample, mods, knowledge, system):
    rendered = dump(load_prompt(name, info).render(sample, info, knowledge=knowledge, modalities=mods, system=system))
    path = SNAPSHOTS / f"{request.node.callspec.id}.txt"
    if UPDATE or not path.exists():
        if not UPDATE:
            pytest.fail(f"no snapshot {path.name}; run with AFFECTBENCH_UPDATE_SNAPSHOTS=1 to create it")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8"), f"rendering changed: {path.name}"


def test_no_stale_snapshots():
    expected = {f"{p.id}.txt" for p in _cases()}
    present = {p.name for p in SNAPSHOTS.glob("*.txt")}
    if UPDATE:
        for stale in present - expected:
            (SNAPSHOTS / stale).unlink()
        present = {p.name for p in SNAPSHOTS.glob("*.txt")}
    assert present == expected
