"""Small readers shared by the dataset adapters: CSV by column name, floats, mojibake repair.

Every failure becomes a DatasetError that names the file and what was expected, so a user
never sees a csv/KeyError traceback.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..core.errors import DatasetError


def read_csv(
    path: Path, required: Sequence[str], dataset: str, encodings: Sequence[str] = ("utf-8-sig",)
) -> tuple[list[str], list[dict[str, str]]]:
    """Rows of a CSV as dicts of strings (ids stay strings), checking `required` columns by name.

    `encodings` are tried in order (e.g. UTF-8, then cp1252 for files saved on Windows).
    """
    expected = ", ".join(required)
    if not path.is_file():
        raise DatasetError(
            f"dataset {dataset!r}: label file {path} not found; expected a CSV with columns {expected} "
            f"(is --root the dataset's top folder?)"
        )
    text: str | None = None
    error: Exception | None = None
    for encoding in encodings:
        try:
            text = path.read_text(encoding=encoding)
            break
        except UnicodeDecodeError as e:
            error = e
        except OSError as e:
            raise DatasetError(f"dataset {dataset!r}: cannot read {path} ({e})") from e
    if text is None:
        raise DatasetError(
            f"dataset {dataset!r}: {path} is not {' or '.join(encodings)} text ({error}); expected a UTF-8 CSV"
        )
    try:
        with io.StringIO(text, newline="") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in required if c not in header]
            if missing:
                raise DatasetError(
                    f"dataset {dataset!r}: {path} lacks column(s) {', '.join(missing)}; "
                    f"expected columns {expected} (found: {', '.join(header) or 'no header'})"
                )
            rows = [{k: (v if v is not None else "") for k, v in row.items() if k is not None} for row in reader]
    except csv.Error as e:
        raise DatasetError(f"dataset {dataset!r}: {path} is not a readable CSV ({e})") from e
    return header, rows


def parse_float(value: object) -> float | None:
    """A float from a CSV/JSON cell; None when empty; NaN when not a number (data check flags it)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return math.nan


def find_dir(root: Path, names: Iterable[str]) -> Path | None:
    """The first existing sub-folder of `root` among `names`, compared case-insensitively."""
    names = list(names)
    for name in names:
        if (root / name).is_dir():
            return root / name
    try:
        entries = {p.name.lower(): p for p in root.iterdir() if p.is_dir()}
    except OSError:
        return None
    for name in names:
        hit = entries.get(name.lower())
        if hit is not None:
            return hit
    return None


# cp1252's printable characters above 0x7f (those that differ from latin-1).
_CP1252_SPECIAL = "€‚ƒ„…†‡ˆ‰Š‹ŒŽ‘’“”•–—˜™š›œžŸ"
# A UTF-8 lead byte (0xC2-0xF4) followed by 1-3 continuation bytes (0x80-0xBF), as cp1252/latin-1 text.
_CONT = "[\u0080-\u00bf" + re.escape(_CP1252_SPECIAL) + "]"
_MOJIBAKE_SEQ = re.compile("[\u00c2-\u00f4]" + _CONT + "{1,3}")


def _to_byte(ch: str) -> bytes:
    try:
        return ch.encode("cp1252")
    except UnicodeEncodeError:
        if ord(ch) < 256:  # C1 control characters that cp1252 leaves undefined
            return bytes([ord(ch)])
        raise


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 text that was decoded as cp1252/latin-1 (e.g. "itâ€™s" -> "it’s"), and cp1252
    text decoded as latin-1 (e.g. "it\x92s" -> "it’s").

    Only sequences that decode cleanly as UTF-8 are replaced, so correct accented text
    ("café") is left alone.
    """

    def fix(m: re.Match[str]) -> str:
        seq = m.group(0)
        try:
            return b"".join(_to_byte(c) for c in seq).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return seq

    if not text:
        return text
    text = _MOJIBAKE_SEQ.sub(fix, text)
    # Left-over C1 control characters are cp1252 bytes read as latin-1 ("it\x92s" -> "it’s").
    return _C1.sub(_c1_to_cp1252, text)


_C1 = re.compile("[\u0080-\u009f]")


def _c1_to_cp1252(m: re.Match[str]) -> str:
    try:
        return bytes([ord(m.group(0))]).decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d are undefined in cp1252
        return m.group(0)


def fold_option(options: Mapping[str, Any], default: int, dataset: str, what: str = "") -> int:
    """Option `fold` as an int in 1..5 (a DatasetError naming the bad value otherwise); `what` says what it picks."""
    try:
        fold = int(options.get("fold", default))
    except (TypeError, ValueError):
        fold = 0
    if not 1 <= fold <= 5:
        raise DatasetError(f"dataset {dataset!r}: option fold must be 1..5{what}, got {options.get('fold')!r}")
    return fold


def truthy(value: object) -> bool:
    """An option that must be set to true explicitly (bool, or "true"/"1"/"yes" from the command line)."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"true", "1", "yes", "on"}


def _norm_sentence(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def shared_text_groups(texts: Mapping[str, Iterable[str]], min_words: int = 6) -> dict[str, str]:
    """Sample id -> group id, where samples that share a sentence (normalised, at least `min_words`
    words) fall in one group, transitively: samples cut from the same scene or talk quote each other
    in their context turns, so they are not independent for a bootstrap. The group id is the first
    member's id in `texts` order; a sample sharing nothing is its own group."""
    parent: dict[str, str] = {sid: sid for sid in texts}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    order = {sid: i for i, sid in enumerate(texts)}
    owner: dict[str, str] = {}
    for sid, sentences in texts.items():
        for s in sentences:
            key = _norm_sentence(s)
            if len(key.split()) < min_words:
                continue
            if key in owner:
                a, b = find(owner[key]), find(sid)
                if a != b:
                    a, b = sorted((a, b), key=order.__getitem__)
                    parent[b] = a
            else:
                owner[key] = sid
    return {sid: find(sid) for sid in texts}
