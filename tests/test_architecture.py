"""The layers import one way: server -> citeqa -> qa -> index -> core. Checked on the source,
every import included (inside functions and `TYPE_CHECKING` blocks too)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "index", "qa", "citeqa", "server")  # each may import only those before it
# What only the application layer may call: routes parse HTTP and call a `Citeqa`.
NOT_FOR_ROUTES = ("index.ingest", "index.loaders", "index.fetch", "index.store",
                  "index.collection_store")


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_no_layer_above_it(layer: str) -> None:
    above = LAYERS[LAYERS.index(layer) + 1:]
    wrong = sorted(f"{path.relative_to(ROOT)} imports {module}"
                   for path in _modules(layer) for module in imports_of(path)
                   if any(_within(module, upper) for upper in above))
    assert not wrong, "\n".join(wrong)


def test_routes_reach_storage_only_through_the_application() -> None:
    wrong = sorted(f"{path.relative_to(ROOT)} imports {module}"
                   for path in _modules("server/routes") for module in imports_of(path)
                   if any(_within(module, banned) for banned in NOT_FOR_ROUTES))
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_imports_in_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from server.services import Services\n"
                      "def f():\n    import citeqa.app\n", encoding="utf-8")
    assert {"server.services", "citeqa.app"} <= imports_of(source)
