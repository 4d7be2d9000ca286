"""The code's shape: no module reaches into another's private names; the driver stays small."""

import ast
import glob
import os

ROOT = os.path.join(os.path.dirname(__file__), "..")
SOURCES = sorted(glob.glob(os.path.join(ROOT, "nst_tf", "*.py")))
SOURCES += sorted(glob.glob(os.path.join(ROOT, "scripts", "*.py")))
SOURCES += sorted(glob.glob(os.path.join(ROOT, "tests", "*.py")))
NAMED_TUPLE_API = {"_asdict", "_replace", "_fields", "_make"}


def private_uses(path: str) -> list[str]:
    """`x._name` where x is not self or cls, and imports of `_name` from another module."""
    with open(path) as f:
        tree = ast.parse(f.read())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            if node.attr in NAMED_TUPLE_API or node.attr.startswith("__"):
                continue
            found.append(f"{os.path.basename(path)}:{node.lineno}: .{node.attr}")
        if isinstance(node, ast.ImportFrom):
            found += [
                f"{os.path.basename(path)}:{node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")
            ]
    return sorted(found)


def test_no_module_uses_another_modules_private_names():
    assert SOURCES
    uses = [use for path in SOURCES for use in private_uses(path)]
    assert uses == []


def test_the_check_sees_a_private_access(tmp_path):
    path = tmp_path / "reach.py"
    path.write_text("import x\nx.thing._hidden()\nself._ok()\nfrom y import _secret\n")  # noqa
    assert private_uses(str(path)) == ["reach.py:2: ._hidden", "reach.py:4: import _secret"]


def test_the_driver_stays_small():
    with open(os.path.join(ROOT, "nst_tf", "transfer.py")) as f:
        assert len(f.read().splitlines()) < 200
