"""Writers of tiny datasets in each corpus's exact on-disk layout, for any test that needs one.

Each writer builds the label files as the real release has them and (with `clips=True`) real
1-second clips via tests._clips; each returns what it wrote so tests can compare.
"""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path
from typing import Any

from tests._clips import espeak, make_clip, make_speech_clip, make_wav

# ----------------------------------------------------------------------------- MMSA

MMSA_COLUMNS = {
    "mosi": ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"],
    "sims": ["video_id", "clip_id", "text", "label", "label_T", "label_A", "label_V", "annotation", "mode"],
    "mosei": ["video_id", "clip_id", "text", "label", "annotation", "mode", "label_T", "label_A", "label_V"],
}

MOSI_ROWS = [
    {"video_id": "03bSnISJMiM", "clip_id": "1", "text": "a lot of sad parts", "label": "-1.8", "mode": "train"},
    {"video_id": "03bSnISJMiM", "clip_id": "2", "text": "i loved it", "label": "2.4", "mode": "train"},
    {"video_id": "0001", "clip_id": "0002", "text": "it was okay", "label": "0.0", "mode": "valid"},
    {"video_id": "Nj7lDt8ulWY", "clip_id": "10", "text": "worst movie ever", "label": "-3.0", "mode": "test"},
]

SIMS_ROWS = [
    {
        "video_id": "video_0001",
        "clip_id": "0001",
        "text": "我真的很开心",
        "label": "0.8",
        "label_T": "1.0",
        "label_A": "0.6",
        "label_V": "",
        "mode": "train",
    },
    {
        "video_id": "video_0001",
        "clip_id": "0002",
        "text": "还行吧",
        "label": "0.0",
        "label_T": "0.0",
        "label_A": "-0.2",
        "label_V": "0.2",
        "mode": "valid",
    },
    {
        "video_id": "video_0002",
        "clip_id": "0001",
        "text": "太糟糕了",
        "label": "-1.0",
        "label_T": "-1.0",
        "label_A": "-0.8",
        "label_V": "-1.0",
        "mode": "test",
    },
]


def _annotation(label: str) -> str:
    try:
        x = float(label)
    except ValueError:
        return ""
    return "Positive" if x > 0 else "Negative" if x < 0 else "Neutral"


def write_mmsa_fixture(
    root: str | Path,
    rows: list[dict[str, str]] | None = None,
    *,
    layout: str = "mosi",
    clips: bool = True,
    columns: list[str] | None = None,
    speech: bool = False,
) -> list[dict[str, str]]:
    """`root/label.csv` (MMSA column order for `layout`) and `root/Raw/<video_id>/<clip_id>.mp4`.

    With `speech`, each clip's audio is its `text` spoken by espeak-ng (Mandarin `cmn` for the sims
    layout, `en-us` otherwise); raises RuntimeError when espeak-ng is not installed.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if rows is None:
        rows = SIMS_ROWS if layout == "sims" else MOSI_ROWS
    rows = [{"annotation": _annotation(r.get("label", "")), **r} for r in rows]
    cols = columns or MMSA_COLUMNS[layout]
    with (root / "label.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({c: r.get(c, "") for c in cols})
    if clips:
        for i, r in enumerate(rows):
            path = root / "Raw" / r["video_id"] / f"{r['clip_id']}.mp4"
            if speech:
                wave_ = espeak(r["text"], "cmn" if layout == "sims" else "en-us")
                if wave_ is None:
                    raise RuntimeError("speech clips need espeak-ng on PATH (scripts/setup.sh installs it)")
                make_speech_clip(path, wave_)
            else:
                make_clip(path, 1.0, freq=300 + 50 * i)
    return rows


# ----------------------------------------------------------------------------- MELD

MELD_COLUMNS = [
    "Sr No.",
    "Utterance",
    "Speaker",
    "Emotion",
    "Sentiment",
    "Dialogue_ID",
    "Utterance_ID",
    "Season",
    "Episode",
    "StartTime",
    "EndTime",
]
MELD_FILES = {"train": "train_sent_emo.csv", "valid": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
MELD_DIRS = {"train": "train_splits", "valid": "dev_splits_complete", "test": "output_repeated_splits_test"}

# (Dialogue_ID, Utterance_ID, Speaker, Utterance, Emotion, Sentiment); text as the release has it,
# with UTF-8 apostrophes mis-decoded as cp1252 ("â€™") or latin-1 ("â\x80\x99").
MELD_ROWS = {
    "train": [
        (0, 0, "Chandler", "also I was the point person on my companyâ€™s transition", "neutral", "neutral"),
        (0, 1, "The Interviewer", "You must\u00e2\u0080\u0099ve had your hands full.", "neutral", "neutral"),
        (0, 2, "Chandler", "That I did. That I did.", "joy", "positive"),
        (1, 0, "Joey", "Oh my God!", "surprise", "positive"),
        (125, 3, "Ross", "Get out!", "anger", "negative"),
    ],
    "valid": [
        (0, 0, "Phoebe", "Oh, itâ€™s so sad.", "sadness", "negative"),
        (110, 7, "Monica", "Okay.", "neutral", "neutral"),
    ],
    "test": [
        (0, 0, "Mark", "Why do all youâ€™re coffee mugs have numbers on the bottom?", "surprise", "positive"),
        (0, 1, "Rachel", "Oh. Thatâ€™s so Monica can keep track.", "neutral", "neutral"),
        (0, 2, "Rachel", "Ew.", "disgust", "negative"),
    ],
}


def write_meld_fixture(
    root: str | Path,
    rows: dict[str, list[tuple[Any, ...]]] | None = None,
    *,
    clips: bool = True,
    dirs: dict[str, str] | None = None,
    known_defects: bool = True,
    columns: list[str] | None = None,
) -> dict[str, list[tuple[Any, ...]]]:
    """The three `*_sent_emo.csv` files and clip folders; with `known_defects`, dev dia110_utt7 is
    left out and train dia125_utt3 is written as garbage, as in the official release."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = rows or MELD_ROWS
    dirs = {**MELD_DIRS, **(dirs or {})}
    cols = columns or MELD_COLUMNS
    sr = 0
    for split, items in rows.items():
        with (root / MELD_FILES[split]).open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for dia, utt, speaker, text, emotion, sentiment in items:
                sr += 1
                full = {
                    "Sr No.": sr,
                    "Utterance": text,
                    "Speaker": speaker,
                    "Emotion": emotion,
                    "Sentiment": sentiment,
                    "Dialogue_ID": dia,
                    "Utterance_ID": utt,
                    "Season": 8,
                    "Episode": 21,
                    "StartTime": "00:16:16,059",
                    "EndTime": "00:16:21,731",
                }
                w.writerow([full[c] for c in cols])
                if not clips:
                    continue
                path = root / dirs[split] / f"dia{dia}_utt{utt}.mp4"
                if known_defects and split == "valid" and (dia, utt) == (110, 7):
                    continue
                if known_defects and split == "train" and (dia, utt) == (125, 3):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(b"\x00corrupt" * 64)
                    continue
                make_clip(path, 1.0, freq=200 + 40 * sr)
    return rows


# ----------------------------------------------------------------------------- IEMOCAP

# dialog kind -> [(utterance suffix, raw label, start, end, text)]
IEMOCAP_DIALOGS = {
    "impro01": [
        ("F000", "neu", 0.1, 0.5, "Excuse me."),
        ("M000", "exc", 0.6, 0.9, "Do you have your forms?"),
        ("F001", "xxx", 1.0, 1.2, "Yeah."),
        ("M001", "fru", 1.2, 1.5, "Let me see them."),
        ("F002", "hap", 1.5, 1.9, "Is there a problem?"),
    ],
    "script01_1": [
        ("M000", "ang", 0.2, 0.7, "What is that?"),
        ("F000", "sad", 0.8, 1.4, "I don't know."),
        ("M001", "sur", 1.4, 1.8, "Really?"),
    ],
}


def iemocap_dialogs(session: int) -> list[str]:
    """The fixture's dialog names in `session` (Ses02F_impro01 falls in the valid hold-out)."""
    return [f"Ses0{session}F_impro01", f"Ses0{session}M_script01_1"]


def write_iemocap_fixture(root: str | Path, sessions: tuple[int, ...] = (1, 2, 3, 4, 5), *, clips: bool = True) -> Path:
    """IEMOCAP_full_release layout: EmoEvaluation, transcriptions, sentence wavs and dialog avis."""
    root = Path(root)
    for s in sessions:
        base = root / f"Session{s}"
        for dialog in iemocap_dialogs(s):
            kind = dialog.split("_", 1)[1]
            items = IEMOCAP_DIALOGS[kind]
            ev = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
            tr = []
            for suffix, code, start, end, text in items:
                utt = f"{dialog}_{suffix}"
                ev += [
                    f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 3.5000]",
                    "C-E2:\tNeutral;\t()",
                    "A-E3:\tval 3; act 2; dom  2;\t()",
                    "",
                ]
                tr.append(f"{utt} [{start:08.4f}-{end:08.4f}]: {text}")
                if clips:
                    make_wav(base / "sentences" / "wav" / dialog / f"{utt}.wav", max(0.2, end - start))
            tr.insert(1, f"{dialog}_MXX0 [000.9000-001.0000]: [LAUGHTER]")
            (base / "dialog" / "EmoEvaluation").mkdir(parents=True, exist_ok=True)
            (base / "dialog" / "EmoEvaluation" / f"{dialog}.txt").write_text("\n".join(ev) + "\n")
            (base / "dialog" / "transcriptions").mkdir(parents=True, exist_ok=True)
            (base / "dialog" / "transcriptions" / f"{dialog}.txt").write_text("\n".join(tr) + "\n")
            if clips:
                make_clip(base / "dialog" / "avi" / "DivX" / f"{dialog}.avi", 2.0, size=(64, 32))
    return root


# ----------------------------------------------------------------------------- MUStARD

SHOWS = ("FRIENDS", "BBT", "GOLDENGIRLS", "SARCASMOHOLICS")


def mustard_data(n: int = 20) -> dict[str, dict[str, Any]]:
    """`n` entries shaped like sarcasm_data.json: alternating labels, shows cycled."""
    data = {}
    for i in range(n):
        show = SHOWS[i % len(SHOWS)]
        data[f"{i + 1}_{100 + i}"] = {
            "utterance": f"Oh, great idea number {i}.",
            "speaker": ["CHANDLER", "SHELDON", "DOROTHY", "PERSON"][i % 4],
            "context": [f"line {i}a", f"line {i}b"],
            "context_speakers": ["ROSS", "RACHEL"],
            "sarcasm": i % 2 == 0,
            "show": show,
        }
    return data


def write_mustard_fixture(
    root: str | Path, data: dict[str, dict[str, Any]] | None = None, *, clips: bool | int = True
) -> dict[str, dict[str, Any]]:
    """`sarcasm_data.json` and `utterances_final/<id>.mp4` (only the first `clips` ones when an int)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data = mustard_data() if data is None else data
    (root / "sarcasm_data.json").write_text(json.dumps(data, indent=2))
    n = len(data) if clips is True else int(clips)
    for i, key in enumerate(list(data)[:n]):
        make_clip(root / "utterances_final" / f"{key}.mp4", 1.0, freq=300 + 20 * i)
    return data


# ----------------------------------------------------------------------------- UR-FUNNY


def write_urfunny_fixture(root: str | Path, *, clips: bool = True) -> dict[str, Any]:
    """The three UR-FUNNY v2 pickles (int ids, dev fold) and `urfunny2_videos/<id>.mp4`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folds = {"train": [11, 12], "dev": [13], "test": [14, 15]}
    language = {
        i: {
            "punchline_sentence": f"and that is why I never fly {i}",
            "context_sentences": [f"so I was at the airport {i}", "and the man said"],
            "punchline_features": [[0.0] * 3],
        }
        for ids in folds.values()
        for i in ids
    }
    labels = {11: 1, 12: 0, 13: 1, 14: 0, 15: 1}
    for name, obj in (("data_folds.pkl", folds), ("language_sdk.pkl", language), ("humor_label_sdk.pkl", labels)):
        with (root / name).open("wb") as f:
            pickle.dump(obj, f)
    if clips:
        for i in labels:
            make_clip(root / "urfunny2_videos" / f"{i}.mp4", 1.0)
    return {"folds": folds, "language": language, "labels": labels}


# ----------------------------------------------------------------------------- manifest

MANIFEST_ROWS = [
    {"id": "007", "transcript": "I am thrilled", "label": "happy", "video": "clips/a.mp4", "split": "train"},
    {"id": "008", "transcript": "this is awful", "label": "Sad", "video": "clips/b.mp4", "split": "dev"},
    {"id": "009", "transcript": "fine", "label": "happy", "video": "clips/c.mp4", "split": "test", "speaker": "s1"},
]


def write_manifest_fixture(
    root: str | Path, rows: list[dict[str, Any]] | None = None, *, fmt: str = "csv", clips: bool = True
) -> Path:
    """`root/manifest.csv` or `.jsonl` plus the clips its `video` column names (relative paths)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = MANIFEST_ROWS if rows is None else rows
    path = root / f"manifest.{fmt}"
    if fmt == "csv":
        cols = list(dict.fromkeys(k for r in rows for k in r))
        with path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            w.writerows(rows)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    if clips:
        for r in rows:
            if r.get("video"):
                make_clip(root / r["video"], 1.0)
    return path
