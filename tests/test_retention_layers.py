"""Retention's modules import one way (issue 22 section 3): no cycle among them, type-only imports
included, and the scan takes one context instead of a dozen parameters."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path

from vigil.retention.scan import ScanContext, scan_store

from tests.conftest import ROOT

PACKAGE = ROOT / "retention"


def _imports(path: Path) -> set[str]:
    """Sibling modules of retention/ that `path` imports (relative or as vigil.retention.*), anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 1:
                found.add(module.split(".")[0] if module else "")
                if not module:
                    found.update(alias.name for alias in node.names)
            elif module.startswith("vigil.retention."):
                found.add(module.split(".")[2])
    return {name for name in found if (PACKAGE / f"{name}.py").is_file() or (PACKAGE / name).is_dir()}


def test_retention_modules_have_no_import_cycle() -> None:
    graph = {path.stem: _imports(path) - {path.stem} for path in PACKAGE.glob("*.py")}
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        if state.get(module) == 2:
            return
        assert state.get(module) != 1, "import cycle: " + " -> ".join(trail + [module])
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            visit(target, trail + [module])
        state[module] = 2

    for module in sorted(graph):
        visit(module, [])
    assert "anonymize" not in graph["items"] and "inventory" not in graph["anonymize"]


def test_scan_takes_a_context() -> None:
    assert list(inspect.signature(scan_store).parameters) == ["ctx", "store"]
    assert {"aws", "policy", "keys", "as_of", "pool", "emit", "observe", "grace", "known"} <= set(ScanContext.__dataclass_fields__)
