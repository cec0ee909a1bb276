"""Where a model's weights come from: a local folder, or a hub id resolved to its commit.

A hub id (`Qwen/Qwen2.5-Omni-7B`) names a moving branch; the run records the commit that the
local Hugging Face cache resolves it to (`ModelSpec.revision`, default "main") and a hash of
the weight files in that snapshot, so two runs of "the same" id on different weights differ.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import _media


def resolve_weights(name: str, revision: str | None, patterns: tuple[str, ...]) -> dict[str, Any]:
    """Provenance of the weights `name` loads.

    Returns {"source": "local", "path", "digest"} for a folder, {"source": "hub", "repo",
    "revision", "commit", "digest", "path"} for a hub id in the local cache (huggingface_hub's
    snapshot folder is named by its commit), or the same with commit=None when the id is not
    cached (the load itself will then fail and say so). `digest` hashes the files matching
    `patterns` (see `_media.folder_identity`). Never downloads.
    """
    if not name:
        return {}
    folder = Path(name).expanduser()
    if folder.is_dir():
        return {"source": "local", "path": str(folder), "digest": _media.folder_identity(folder, patterns)}
    out: dict[str, Any] = {"source": "hub", "repo": name, "revision": revision or "main", "commit": None}
    try:
        from huggingface_hub import snapshot_download

        path = Path(snapshot_download(repo_id=name, revision=revision, local_files_only=True))
    except Exception:  # not cached, or huggingface_hub missing: nothing to resolve offline
        return out
    out.update(commit=path.name, path=str(path), digest=_media.folder_identity(path, patterns))
    return out
