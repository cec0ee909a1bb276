"""Shared readers: mojibake repair, CSV by column name, float cells."""

from __future__ import annotations

import math

import pytest

from affectbench.core.errors import DatasetError
from affectbench.datasets._common import find_dir, parse_float, read_csv, repair_mojibake


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("itâ€™s fine", "it’s fine"),  # UTF-8 read as cp1252
        ("it\u00e2\u0080\u0099s", "it’s"),  # UTF-8 read as latin-1 (C1 controls)
        ("I donâ€™t â€œknowâ€\x9d", "I don’t “know”"),
        ("Ã©tÃ©", "été"),
        ("it\x92s \x93ok\x94", "it’s “ok”"),  # cp1252 read as latin-1
        ("café", "café"),  # correct text is left alone
        ("naïve — “ok”", "naïve — “ok”"),
        ("", ""),
    ],
)
def test_repair_mojibake(raw: str, fixed: str) -> None:
    assert repair_mojibake(raw) == fixed


def test_parse_float() -> None:
    assert parse_float(" -1.8 ") == -1.8
    assert parse_float("") is None
    assert parse_float(None) is None
    assert math.isnan(parse_float("abc"))  # type: ignore[arg-type]
    assert parse_float(2) == 2.0


def test_read_csv_keeps_ids_as_strings_and_names_missing_columns(tmp_path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("\ufeffid,label\n0007,1\n", encoding="utf-8")
    header, rows = read_csv(p, ("id", "label"), "demo")
    assert header == ["id", "label"] and rows == [{"id": "0007", "label": "1"}]
    with pytest.raises(DatasetError, match=r"lacks column\(s\) text; expected columns id, text"):
        read_csv(p, ("id", "text"), "demo")
    with pytest.raises(DatasetError, match="not found"):
        read_csv(tmp_path / "nope.csv", ("id",), "demo")


def test_read_csv_rejects_non_utf8(tmp_path) -> None:
    p = tmp_path / "x.csv"
    p.write_bytes(b"id,label\n\xff\xfe,1\n")
    with pytest.raises(DatasetError, match="is not utf-8-sig text .*expected a UTF-8 CSV"):
        read_csv(p, ("id",), "demo")


def test_find_dir_is_case_insensitive(tmp_path) -> None:
    (tmp_path / "Train_Splits").mkdir()
    assert find_dir(tmp_path, ["train_splits"]) == tmp_path / "Train_Splits"
    assert find_dir(tmp_path, ["other"]) is None
