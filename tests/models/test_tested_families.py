"""`affectbench ls models` says "tested" only for families that are cases of the one parametrized
end-to-end test (tests/models/test_zoo.py::test_family_end_to_end), which imports its dependencies
instead of skipping, so a "tested" family is one whose case ran in CI."""

import ast
from pathlib import Path

from affectbench.models import families

ZOO = Path(__file__).with_name("test_zoo.py")


def _parametrized_keys() -> list[str]:
    """The keys `test_family_end_to_end` is parametrized over, read from test_zoo's own module."""
    from tests.models import test_zoo

    marks = [m for m in test_zoo.test_family_end_to_end.pytestmark if m.name == "parametrize"]
    (mark,) = marks
    assert mark.args[0] == "key"
    return list(mark.args[1])


def test_every_family_called_tested_is_a_case_of_the_end_to_end_test():
    tested = {f.key: f.tested for f in families.FAMILIES if f.tested}
    keys = _parametrized_keys()
    assert sorted(tested) == sorted(keys)
    for key, node in tested.items():
        assert node == f"tests/models/test_zoo.py::test_family_end_to_end[{key}]"
    rows = {r["key"]: r["status"] for r in families.table()}
    assert {k for k, s in rows.items() if s.startswith("tested")} == set(keys)


def test_the_end_to_end_module_never_skips_for_a_missing_dependency():
    tree = ast.parse(ZOO.read_text())
    calls = [
        n.func.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr in ("importorskip", "skip")
    ]
    assert calls == []
