"""Fingerprints of what a run read, and the sentences that say what changed on a resume.

A run's id covers its settings, not the bytes it read: the dataset root is not hashed (moving a
copy must not orphan runs) and knowledge runs grow. So each run segment records
- `data`: a digest per label file the adapter read and one over every selected sample's target,
  transcript, span and media identity (size + head/tail content, no path and no mtime, so a copied
  dataset keeps its identity); each prediction keeps its sample's digest in `meta["data"]`;
- `knowledge`: the knowledge run ids and a digest of the texts the run's samples receive;
- `prompt`: the prompt's fingerprint, and `prompt_text`: the resolved template itself;
- `weights`: where the model's weights come from (hub commit or folder digest).
`check_resume` compares a stored segment with the current one and refuses, in one sentence per
difference, to mix results made from different inputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..core.specs import ModelSpec, RunSpec
    from .store import RunRecord, Store

from ..core.environment import environment
from ..core.errors import StoreError
from ..core.types import Sample

HEAD_TAIL = 1 << 20  # bytes hashed at each end of a large media file
_MEDIA_MEMO: dict[tuple[str, int, int], str] = {}


def media_identity(path: str | Path) -> str:
    """Content identity of a media file: sha256 of its size and first/last MiB (whole file when
    smaller), 16 hex chars. Independent of path and mtime; "missing" for a file that is not there."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return "missing"
    key = (str(p), st.st_size, st.st_mtime_ns)
    hit = _MEDIA_MEMO.get(key)
    if hit:
        return hit
    h = hashlib.sha256(str(st.st_size).encode())
    with open(p, "rb") as f:
        if st.st_size <= 2 * HEAD_TAIL:
            h.update(f.read())
        else:
            h.update(f.read(HEAD_TAIL))
            f.seek(-HEAD_TAIL, os.SEEK_END)
            h.update(f.read(HEAD_TAIL))
    _MEDIA_MEMO[key] = digest = h.hexdigest()[:16]
    return digest


def sample_digest(sample: Sample) -> str:
    """What a model and a metric see of one sample: target, transcript, context, span and the
    content of its media files (not their paths). 16 hex chars."""
    data = {
        "target": sample.target,
        "transcript": sample.transcript,
        "context": [[t.text, t.speaker] for t in sample.context] if sample.context else [],
        "span": list(sample.span) if sample.span else None,
        "media": {k: media_identity(v) for k, v in sorted(sample.media.items())},
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """sha256 of a whole (label) file, 16 hex chars; "missing" when absent."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        return "missing"


def data_record(samples: Iterable[Sample], label_files: Iterable[Path], root: Path | None) -> dict[str, Any]:
    """{"n", "digest", "files": {relative path: digest}, "samples": {id: digest}} of what a run reads.

    `samples` are the run's selected samples; `label_files` what the adapter parsed for them.
    The per-sample digests go into each prediction's meta (see the runner), not the run record.
    """
    per_sample = {s.id: sample_digest(s) for s in samples}
    files = {}
    for f in label_files:
        f = Path(f)
        name = str(f.relative_to(root)) if root is not None and f.is_relative_to(root) else f.name
        files[name] = file_digest(f)
    h = hashlib.sha256(json.dumps(sorted(per_sample.items())).encode())
    return {"n": len(per_sample), "digest": h.hexdigest()[:16], "files": files, "samples": per_sample}


def knowledge_record(run_ids: list[str], texts: Mapping[str, str], sample_ids: Iterable[str]) -> dict[str, Any]:
    """{"runs", "digest", "n"}: the knowledge runs used and a digest of the texts the given samples get."""
    used = sorted((sid, texts[sid]) for sid in set(sample_ids) if sid in texts)
    h = hashlib.sha256(json.dumps(used, ensure_ascii=False).encode())
    return {"runs": list(run_ids), "digest": h.hexdigest()[:16], "n": len(used)}


def prompt_record(prompt: Any) -> dict[str, Any]:
    """{"prompt": fingerprint, "prompt_text": the resolved template as JSON text (or None)}."""
    spec = getattr(prompt, "spec", None)
    text = None
    if spec is not None and hasattr(spec, "model_dump"):
        text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, indent=1)
    return {"prompt": getattr(prompt, "fingerprint", getattr(prompt, "version", None)), "prompt_text": text}


def _first(d: Mapping[str, Any] | None, key: str) -> Any:
    return (d or {}).get(key)


def changed_inputs(run_id: str, before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> list[str]:
    """One sentence per input of `run_id` that differs between a stored segment and now.

    Compares prompt fingerprint, model fingerprint, weights (hub commit / folder digest),
    knowledge digest and label-file digests; a key absent on either side is not compared.
    """
    before = before or {}
    out = []
    for key, what in (("prompt", "prompt template"), ("fingerprint", "model (weights, adapter or settings)")):
        if before.get(key) and now.get(key) and before[key] != now[key]:
            out.append(f"the {what} changed ({before[key]} → {now[key]})")
    wb, wn = before.get("weights") or {}, now.get("weights") or {}
    for key, what in (("commit", "hub commit"), ("digest", "weight files")):
        if wb.get(key) and wn.get(key) and wb[key] != wn[key]:
            out.append(f"the model's {what} changed ({wb[key]} → {wn[key]})")
    kb, kn = before.get("knowledge"), now.get("knowledge")
    if kb and kn and (kb.get("runs") != kn.get("runs") or kb.get("digest") != kn.get("digest")):
        if kb.get("runs") != kn.get("runs"):
            out.append(f"the knowledge runs changed ({kb.get('runs')} → {kn.get('runs')})")
        else:
            out.append(
                f"the knowledge texts changed ({kb.get('n')} texts, digest {kb.get('digest')} → "
                f"{kn.get('n')} texts, digest {kn.get('digest')})"
            )
    fb, fn = _first(before.get("data"), "files") or {}, _first(now.get("data"), "files") or {}
    for name in sorted(set(fb) & set(fn)):
        if fb[name] != fn[name]:
            out.append(
                f"the label file {name} differs from the one its predictions were made from ({fb[name]} → "
                f"{fn[name]}): it was edited, or this root is another copy or version of the corpus — to keep "
                "both, give this copy its own dataset.version (its runs then get their own ids)"
            )
    return out


def changed_samples(
    stored: Iterable[tuple[str, Any, str | None]],
    targets: Mapping[str, Any],
    digests: Mapping[str, str],
    limit: int = 3,
    report_gone: bool = True,
) -> list[str]:
    """Sentences naming samples whose stored target or input digest differs from the dataset now.

    `stored` yields (sample id, stored target, stored digest or None); `targets`/`digests` are the
    current values by sample id. Samples no longer in the dataset are reported when `report_gone`
    (not for knowledge runs, which grow over splits and subsets).
    """
    target_diff, input_diff, gone = [], [], []
    for sid, target, digest in stored:
        if sid not in targets:
            if report_gone:
                gone.append(sid)
        elif target != targets[sid]:
            target_diff.append(f"{sid}: {target!r} → {targets[sid]!r}")
        elif digest and digests.get(sid) and digest != digests[sid]:
            input_diff.append(sid)
    out = []
    if target_diff:
        out.append(f"the target of {len(target_diff)} stored sample(s) changed ({'; '.join(target_diff[:limit])})")
    if input_diff:
        out.append(
            f"the media or transcript of {len(input_diff)} stored sample(s) changed ({', '.join(input_diff[:limit])})"
        )
    if gone:
        out.append(f"{len(gone)} stored sample(s) are no longer in the dataset ({', '.join(gone[:limit])})")
    return out


def refuse(run_id: str, reasons: list[str], action: str = "resume") -> None:
    """Raise StoreError with every reason in one message, and how to go on."""
    if reasons:
        raise StoreError(
            f"run {run_id}: refusing to {action}: " + "; ".join(reasons) + ". Stored predictions were made from "
            f"other inputs; delete the run (affectbench rm {run_id}) to redo it, or restore the old inputs"
        )


def check_same_inputs(
    record: RunRecord,
    env: dict[str, Any],
    store: Store | None = None,
    samples: list[Sample] | None = None,
    digests: dict[str, str] | None = None,
    action: str = "resume",
) -> None:
    """Refuse to resume (or rescore) a run whose prompt, model weights, knowledge texts, label files
    or stored samples' targets/media changed since its predictions were made; one sentence per change.
    Raises StoreError (see `refuse`)."""
    reasons = changed_inputs(record.id, record.env, env)
    if store is not None and samples is not None:
        targets = {s.id: s.target for s in samples}
        stored = ((p.sample_id, p.target, p.meta.get("data")) for p in store.predictions(record.id))
        reasons += changed_samples(stored, targets, digests or {}, report_gone=record.kind != "knowledge")
    refuse(record.id, reasons, action)


def model_provenance(mspec: ModelSpec) -> dict[str, Any]:
    """Model identity without loading it: the fingerprint `Model.fingerprint` gives for the spec's
    result-changing fields, and the weights' source (local folder digest or resolved hub commit)."""
    from ..core.specs import canonical_json
    from ..models import weights_provenance

    fp = hashlib.sha256(canonical_json(mspec.identity()).encode()).hexdigest()[:16]
    return {"fingerprint": fp, "weights": weights_provenance(mspec.name, mspec.revision)}


def segment_env(spec: RunSpec, prompt: Any, data: dict[str, Any], knowledge: dict[str, Any] | None) -> dict:
    """What one start or resume of a run records: versions, prompt text, data and knowledge
    fingerprints, and the model options used (speed-only ones included)."""
    env = dict(environment(), **prompt_record(prompt), data=data, started_at=time.time())
    env["model_options"] = dict(spec.model.options)
    if knowledge is not None:
        env["knowledge"] = knowledge
    return env


def result_fingerprints(store: Store, run_id: str) -> dict[str, str]:
    """Short digests (8 hex) of what a run read and produced, to find where two machines diverge: `data` (the
    samples' targets, transcripts and media content, `data_record`), `knowledge` (the
    texts a knowledge run stored, or the digest of the knowledge an eval/readout run's prompts got),
    `adapter` (the bytes of a finetune or lora_head run's adapter weights), `predictions` (every sample id,
    raw answer and value) and `scores` (the stored option scores, exactly: float noise shows here first)."""
    rec = store.run(run_id)
    out: dict[str, str] = {}
    short = lambda h: h.hexdigest()[:8]  # noqa: E731
    data = (rec.env or {}).get("data") or {}
    if data.get("digest"):
        out["data"] = str(data["digest"])[:8]
    if rec.kind == "knowledge":
        out["knowledge"] = short(hashlib.sha256(json.dumps(sorted(store.knowledge(run_id).items())).encode()))
    elif (rec.env or {}).get("knowledge"):
        out["knowledge"] = str(rec.env["knowledge"].get("digest", ""))[:8]
    adapter = store.artifact(run_id, "adapter")
    if adapter is not None and Path(adapter).is_dir():
        h = hashlib.sha256()
        for f in sorted(Path(adapter).glob("adapter_model.*")):
            h.update(f.read_bytes())
        out["adapter"] = short(h)
    if rec.kind in ("eval", "readout"):
        answers, scores = hashlib.sha256(), hashlib.sha256()
        for p in sorted(store.predictions(run_id), key=lambda p: p.sample_id):
            answers.update(json.dumps([p.sample_id, p.raw, p.value], default=str).encode())
            scores.update(json.dumps([p.sample_id, (p.meta or {}).get("scores")], sort_keys=True).encode())
        out["predictions"] = short(answers)
        if any((p.meta or {}).get("scores") for p in store.predictions(run_id)):
            out["scores"] = short(scores)
    return out
