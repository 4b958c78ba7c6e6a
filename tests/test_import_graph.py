"""Layers point one way: each package imports only from its own layer or the layers below it.

    core (vigil/*.py, vigil.policy) <- checks <- retention, evidence, infra <- subjects
        <- stages <- scheduler, demo <- cli

The scheduler and the demo run stages through their typed entry points (vigil.stages), never
through the command line; the CLI is the front end of everything, `vigil run`, `vigil schedule`
and `vigil demo` included, so it sits on top. Imports are read with `ast` (function-local ones
too), so no import can hide from this test.
"""
from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT
from vigil.iam_actions import imported_module

# Where each package's source lives (pyproject.toml maps the card's top-level folders into vigil.*).
SOURCES = {"vigil": ROOT / "vigil", "vigil.checks": ROOT / "checks", "vigil.retention": ROOT / "retention",
           "vigil.evidence": ROOT / "evidence", "vigil.infra": ROOT / "infra"}
LAYERS = [
    ("core", ("vigil",)),  # vigil/*.py and vigil.policy: anything not named below
    ("checks", ("vigil.checks",)),
    ("retention/evidence/infra", ("vigil.retention", "vigil.evidence", "vigil.infra")),
    ("subjects", ("vigil.subjects",)),
    ("stages", ("vigil.stages",)),
    ("scheduler/demo", ("vigil.scheduler", "vigil.demo")),
    ("cli", ("vigil.cli", "vigil.__main__")),  # `python -m vigil` is the CLI
]
TOP_LEVEL_FOLDERS = ("checks", "retention", "evidence", "infra")  # installed as vigil.*; never imported by their folder name


def layer(module: str) -> int:
    best, rank = "", 0
    for index, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, rank = prefix, index
    return rank


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            relative = path.relative_to(folder).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "vigil" and parts and f"vigil.{parts[0]}" in SOURCES:
                continue  # a mapped package's own folder wins
            found[name] = path
    return found


def imports(module: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = imported_module(package, node)
            out.append((node.lineno, base))
            out.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return out


MODULES = modules()


def test_layers_point_one_way() -> None:
    violations = []
    for module, path in sorted(MODULES.items()):
        for line, target in imports(module, path):
            if target.startswith("vigil") and layer(target) > layer(module):
                violations.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[layer(module)][0]}) imports "
                                  f"{target} ({LAYERS[layer(target)][0]}), a layer above it")
    assert not violations, "imports pointing back up:\n" + "\n".join(violations)


def test_no_module_imports_a_source_folder_by_its_own_name() -> None:
    """Code imports `vigil.evidence`, never `evidence`: a folder named evidence/ (cli.md's default
    output, ./evidence/<run-id>/) in the working directory can never shadow Vigil's code."""
    wrong = [f"{path.relative_to(ROOT)}:{line}: import {target}" for module, path in sorted(MODULES.items())
             for line, target in imports(module, path) if target.split(".")[0] in TOP_LEVEL_FOLDERS]
    assert not wrong, "\n".join(wrong)


def test_the_layers_cover_the_packages() -> None:
    assert {"vigil.cli.main", "vigil.stages.check", "vigil.scheduler.pipeline", "vigil.checks.runner",
            "vigil.retention.engine", "vigil.subjects.erase", "vigil.permissions"} <= set(MODULES)
    assert [layer(m) for m in ("vigil.permissions", "vigil.checks.runner", "vigil.infra.program", "vigil.subjects.erase",
                               "vigil.stages.check", "vigil.demo.run", "vigil.cli.main")] == [0, 1, 2, 3, 4, 5, 6]
