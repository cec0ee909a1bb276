"""Build real_answers_binary.jsonl from a clone of github.com/consciousness-lab/ctm-ai (run once; kept
for provenance): `python make_real_answers_binary.py /path/to/ctm-ai > real_answers_binary.jsonl`.

Sarcasm (MUStARD) and humour (UR-FUNNY) answers of Gemini, Qwen3-Omni and Qwen3-VL-8B (instruct and
thinking) as the repository released them under `exp_affective/` at commit COMMIT. Each row: the
answer text, its source (repo, path, commit, the sample id), the model, the dataset's label set
(affectbench's: MUStARD sincere/sarcastic, UR-FUNNY not humorous/humorous) and `reader`:

- "unified"/"smoke" runs answer a prompt that says "Your answer should start with 'Yes' or 'No'"
  (ctm-ai `exp_affective/*`, SYS_PROMPT), so a reader takes the answer's opening Yes/No. Checked
  against a later contradiction two ways: every row was searched for a negated mention of the
  label (Yes rows) or an asserted one (No rows) — none — and the rows where an earlier parser
  disagreed (about 30) were read in full;
- the Qwen3-VL-8B-thinking CTM run (`ctm_urfunny_qwen3vl_thinking_v28.jsonl`) answers in free text:
  READINGS below are my readings of its first rows (None: the text says it cannot tell).

`reader` never comes from the repository's own `label_normalized` (their parser) nor from ours.
"""

import json
import re
import subprocess
import sys

REPO = "consciousness-lab/ctm-ai"
COMMIT = "8ed04c8d099c341aa35d82944ce11a1899f8b0e1"
MUSTARD = ["sincere", "sarcastic"]
URFUNNY = ["not humorous", "humorous"]
YES_NO = [  # (path, model, task, labels, rows answering "No" kept, rows answering "Yes" kept)
    ("exp_affective/unified_mustard_gemini_full.jsonl", "gemini", "sarcasm", MUSTARD, 40, 40),
    ("exp_affective/unified_urfunny_gemini_full.jsonl", "gemini", "humour", URFUNNY, 40, 40),
    ("exp_affective/results_smoke/smoke_mustard_qwen3omni.jsonl", "qwen3-omni", "sarcasm", MUSTARD, 9, 9),
    ("exp_affective/results_smoke/smoke_urfunny_qwen3omni.jsonl", "qwen3-omni", "humour", URFUNNY, 9, 9),
    ("exp_affective/results_smoke/smoke_urfunny_qwen3_vl_8b_instruct.jsonl", "qwen3-vl-8b-instruct", "humour", URFUNNY, 9, 9),
    ("exp_affective/results_smoke/smoke_urfunny_qwen3_vl_8b_thinking.jsonl", "qwen3-vl-8b-thinking", "humour", URFUNNY, 9, 9),
    ("exp_affective/results_smoke/smoke_urfunny_qwen3_vl_flash.jsonl", "qwen3-vl-flash", "humour", URFUNNY, 9, 9),
]  # fmt: skip
FREE = ("exp_affective/ctm_urfunny_qwen3vl_thinking_v28.jsonl", "qwen3-vl-8b-thinking", "humour", URFUNNY)
H, N = "humorous", "not humorous"
READINGS = {  # row index in FREE -> the reader's value (None: "cannot determine / not possible to tell")
    0: N, 1: None, 2: None, 3: None, 4: H, 5: None, 6: H, 7: H, 8: N, 9: N, 10: H, 11: H, 12: None,
    13: None, 16: H, 17: H, 18: H, 20: N, 21: H, 22: H, 23: H, 26: None, 27: H, 29: None, 30: None, 31: None,
}  # fmt: skip
LEAD = re.compile(r"\s*\**\s*(yes|no)\b", re.I)


def rows(clone: str, path: str) -> list[tuple[str, str]]:
    text = subprocess.check_output(["git", "-C", clone, "show", f"{COMMIT}:{path}"], text=True)
    out = []
    for line in text.splitlines():
        if line.strip():
            ((sid, rec),) = json.loads(line).items()
            ans = rec["answer"][0] if isinstance(rec["answer"], list) else rec["answer"]
            if isinstance(ans, str) and ans.strip():
                out.append((sid, ans))
    return out


def main(clone: str) -> None:
    def emit(path, model, task, labels, sid, answer, reader):
        row = {"repo": REPO, "path": path, "commit": COMMIT, "row": sid, "model": model, "task": task}
        row |= {"labels": labels, "answer": answer, "reader": reader}
        print(json.dumps(row, ensure_ascii=False))

    for path, model, task, labels, n_no, n_yes in YES_NO:
        kept = {"no": 0, "yes": 0}
        for sid, ans in rows(clone, path):
            m = LEAD.match(ans)
            if not m:
                continue
            word = m.group(1).lower()
            if kept[word] < (n_no if word == "no" else n_yes):
                kept[word] += 1
                emit(path, model, task, labels, sid, ans, labels[1] if word == "yes" else labels[0])
    path, model, task, labels = FREE
    for i, (sid, ans) in enumerate(rows(clone, path)):
        if i in READINGS:
            emit(path, model, task, labels, sid, ans, READINGS[i])


if __name__ == "__main__":
    main(sys.argv[1])
