"""The code's shape: no module reaches into another's private names; the driver stays small."""

import ast
import glob
import os

ROOT = os.path.join(os.path.dirname(__file__), "..")
SOURCES = sorted(glob.glob(os.path.join(ROOT, "nst_tf", "*.py")))
SOURCES += sorted(glob.glob(os.path.join(ROOT, "scripts", "*.py")))
SOURCES += sorted(glob.glob(os.path.join(ROOT, "scripts", "benchmarks", "*.py")))
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


def package_imports(path: str) -> set[str]:
    """The nst_tf modules a file imports, at its top or inside a function."""
    with open(path) as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "nst_tf":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nst_tf."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("nst_tf.")}
    return found


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each circle of imports in `graph` (module -> modules it imports), found once, from its
    first module in sorted order."""
    circles = []

    def walk(path: list[str]) -> None:
        for following in sorted(graph.get(path[-1], ())):
            if following == path[0]:
                circles.append([*path, following])
            elif following > path[0] and following not in path:
                walk([*path, following])

    for module in sorted(graph):
        walk([module])
    return circles


def test_no_import_circle_in_the_package():
    modules = {
        os.path.basename(p)[: -len(".py")]: p
        for p in glob.glob(os.path.join(ROOT, "nst_tf", "*.py"))
    }
    graph = {name: package_imports(path) & set(modules) - {name} for name, path in modules.items()}
    assert graph["pyramid"] >= {"config", "images"}  # the check sees imports
    assert import_circles(graph) == []


def test_the_circle_check_finds_a_circle(tmp_path):
    path = tmp_path / "a.py"
    path.write_text("from nst_tf import b\n\ndef f():\n    import nst_tf.c\n")
    assert package_imports(str(path)) == {"b", "c"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c", "a"]]
