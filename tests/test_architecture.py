"""The shape every service keeps: only its repository touches the store.

A service's repository (`repository.py` or a `repository/` package; boards' statistics
keep theirs in `stats/repository.py`) is the one door to its database, with methods
named for what they do. This test reads every other module of the services and of the
contracts and fails on the three ways code reaches past that door: importing the driver,
indexing a database by collection name (`db["cards"]`, `uow.db[...]`), or calling a
collection's query/update methods.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVER_MODULES = ("pymongo", "motor", "bson")
COLLECTION_METHODS = frozenset({
    "find_one", "insert_one", "insert_many", "update_one", "update_many", "replace_one",
    "delete_one", "delete_many", "find_one_and_update", "find_one_and_delete",
    "find_one_and_replace", "count_documents", "estimated_document_count", "aggregate",
    "bulk_write", "create_index", "create_indexes", "distinct", "drop_collection",
    "list_collection_names", "watch",
})


def _is_repository(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    return "repository" in parts or path.name == "repository.py"


def _modules() -> list[Path]:
    found = sorted((ROOT / "services").glob("*/*/**/*.py"))
    found += sorted((ROOT / "libs" / "contracts").rglob("*.py"))
    return [p for p in found if not _is_repository(p)]


def _is_db(node: ast.AST) -> bool:
    """`db` or `<anything>.db` — a database handle being indexed by collection name."""
    return (isinstance(node, ast.Name) and node.id == "db") or \
        (isinstance(node, ast.Attribute) and node.attr == "db")


def store_reaches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
    found = []
    for node in ast.walk(tree):
        where = f"{name}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names
                      if a.name.split(".")[0] in DRIVER_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module and \
                node.module.split(".")[0] in DRIVER_MODULES:
            found.append(f"{where} imports from {node.module}")
        elif isinstance(node, ast.Subscript) and _is_db(node.value):
            found.append(f"{where} indexes a database")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and \
                node.func.attr in COLLECTION_METHODS:
            found.append(f"{where} calls .{node.func.attr}()")
    return found


def test_only_repositories_touch_the_store():
    offences = [line for path in _modules() for line in store_reaches(path)]
    assert offences == [], "store reached outside a repository:\n" + "\n".join(offences)


@pytest.mark.parametrize("source, expected", [
    ("from pymongo import ReturnDocument\n", "imports from pymongo"),
    ("import bson\n", "imports bson"),
    ("async def f(uow):\n    await uow.db['cards'].find({})\n", "indexes a database"),
    ("async def f(coll):\n    await coll.update_one({}, {})\n", "calls .update_one()"),
])
def test_the_check_catches_each_way_past_the_door(tmp_path, source, expected):
    module = tmp_path / "probe.py"
    module.write_text(source)
    assert any(expected in line for line in store_reaches(module))
