"""Build real_answers.jsonl from a clone of github.com/EmotionConflict/merr-reasoning (run once; kept
for provenance): `python make_real_answers.py /path/to/merr-reasoning > real_answers.jsonl`.

Each row: the model's answer as it emitted it (its JSON object without the dataset's `video_id` and
`ground_truth`, or a free-text justification), its source (repo, path, commit), the model, the
label set, and `reader`: the value a reader takes — for a JSON answer its `first_emotion` field
(the answer the model declared) when that is one of the dataset's labels, else null (unread); for
free text the label hand-assigned in FREE_TEXT_READINGS below (null: a reader cannot tell).
"""

import json
import subprocess
import sys

REPO = "EmotionConflict/merr-reasoning"
MELD = ["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"]
IEMOCAP6 = ["happy", "sad", "neutral", "angry", "excited", "frustrated"]
MER = ["neutral", "angry", "happy", "sad", "worried", "surprise"]
JSON_FILES = [  # (path, model, labels, first n rows)
    ("final/result/MELD/chenyu-run/baseline_TAV_gpt4o.json", "gpt-4o", MELD, 191),
    ("final/result/MELD/mar-workshop/baseline_gpt5-nano.json", "gpt-5-nano", MELD, 80),
    ("final/result/MELD/mar-workshop/baseline_gpt4-mini.json", "gpt-4o-mini", MELD, 80),
    ("final/result/IEMOCAP/chenyu-run/baseline_TAV_gpt4o.json", "gpt-4o", IEMOCAP6, 129),
    ("final/result/MER/chenyu-run/baseline_TAV_gpt4o.json", "gpt-4o", MER, 60),
]
FREE_TEXT = ("final/result/MELD/chenyu-run/baseline_T_gpt4o.json", "gpt-4o", MELD)
# Hand readings of the first 40 `justification` texts (the dominant emotion the text states;
# None where it names two without saying which dominates, or none at all).
FREE_TEXT_READINGS = [
    "sadness",
    "disgust",
    "joy",
    "neutral",
    "neutral",
    "surprise",
    "neutral",
    "fear",
    "neutral",
    "neutral",
    "joy",
    "surprise",
    "neutral",
    "anger",
    "neutral",
    "neutral",
    "neutral",
    None,
    "anger",
    "fear",
    "disgust",
    "anger",
    "surprise",
    "surprise",
    "anger",
    "surprise",
    "surprise",
    "surprise",
    "neutral",
    None,
    "joy",
    "surprise",
    "joy",
    "neutral",
    "joy",
    "disgust",
    "sadness",
    "neutral",
    "fear",
    None,
]


def main(clone: str) -> None:
    commit = subprocess.check_output(["git", "-C", clone, "rev-parse", "HEAD"], text=True).strip()

    def load(path):
        return json.loads(subprocess.check_output(["git", "-C", clone, "show", f"HEAD:{path}"]))

    for path, model, labels, n in JSON_FILES:
        for i, row in enumerate(load(path)[:n]):
            answer = {k: v for k, v in row.items() if k not in ("video_id", "ground_truth")}
            first = str(answer.get("first_emotion") or "").strip().lower()
            out = {
                "repo": REPO,
                "path": path,
                "commit": commit,
                "row": i,
                "model": model,
                "labels": labels,
                "answer": json.dumps(answer, indent=2, ensure_ascii=False),
                "reader": first if first in labels else None,
            }
            print(json.dumps(out, ensure_ascii=False))
    path, model, labels = FREE_TEXT
    for i, (row, reading) in enumerate(zip(load(path), FREE_TEXT_READINGS, strict=False)):
        out = {
            "repo": REPO,
            "path": path,
            "commit": commit,
            "row": i,
            "model": model,
            "labels": labels,
            "answer": row["justification"],
            "reader": reading,
            "field": "justification",
        }
        print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1])
