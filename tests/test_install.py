"""What `pip install vigil` gives: the run-time CLI without its extras, and a wheel that carries its own data."""
from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from vigil import __version__

pytestmark = pytest.mark.slow  # fresh interpreters and a wheel build

# Run before the code under test: every optional extra looks uninstalled.
WITHOUT_EXTRAS = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("pulumi", "pulumi_aws", "pulumi_policy", "moto", "flask", "werkzeug", "pyspark"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
"""


def python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRAS + code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_run_time_cli_needs_no_extra(tmp_path: Path) -> None:
    done = python("""
import importlib
from vigil.cli.main import COMMANDS, build_parser
build_parser()
for name in COMMANDS:
    importlib.import_module("vigil.cli." + name)
import vigil.permissions, vigil.scheduler.pipeline, vigil.stages.check, vigil.stages.retain, vigil.stages.requests
print("ok")
""", tmp_path)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_demo_without_its_extra_exits_2_naming_it(tmp_path: Path) -> None:
    done = python("""
import sys
from vigil.cli.main import main
sys.exit(main(["demo", "--output", "out"]))
""", tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "pip install 'vigil[demo]'" in done.stderr and "unexpected error" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_the_wheel_carries_the_demo_policy_and_templates(tmp_path: Path) -> None:
    """Built from a clean copy of the tree in which `vigil` has run: the default output folders
    (cli.md: ./evidence/<run-id>/, and the subject plans) sit inside the evidence/ source
    folder and must never ship."""
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache", ".hypothesis",
        "evidence-out", "vigil-out"))
    for run in ("20990101T000000Z-abcdef", "subjects/0123456789abcdef"):
        (source / "evidence" / run).mkdir(parents=True, exist_ok=True)
        (source / "evidence" / run / "findings.json").write_text("{}")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    assert "would be ignored" not in build.stderr
    (wheel,) = tmp_path.glob("vigil-*.whl")
    assert wheel.name.startswith(f"vigil-{__version__}-")
    names = set(zipfile.ZipFile(wheel).namelist())
    with zipfile.ZipFile(wheel) as archive:
        policy = archive.read("vigil/demo/policy.yaml").decode()
        metadata = archive.read(f"vigil-{__version__}.dist-info/METADATA").decode()
    assert policy == (ROOT / "policy.yaml").read_text(), "the demo ships the repository's example policy, not a link"
    assert {"vigil/evidence/templates/report.html.j2", "vigil/subjects/templates/README.md.j2",
            "vigil/checks/catalogue.yaml", "vigil/infra/policy_pack/PulumiPolicy.yaml", "vigil/stages/check.py"} <= names
    assert not any(name.split("/")[0] in ("checks", "retention", "evidence", "infra", "tests") for name in names)
    assert not any(name.startswith(("vigil/evidence/2099", "vigil/evidence/subjects")) for name in names), "a run folder shipped"
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    base = [r for r in requires if "extra ==" not in r]
    assert not any(p in r for r in base for p in ("pulumi", "moto", "pyspark")), base
    assert any("psycopg" in r for r in base), "the run-time CLI retains PostgreSQL stores"
    assert any("moto" in r and "extra == \"demo\"" in r for r in requires)
