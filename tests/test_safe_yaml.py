"""Hostile YAML (issue 15 item 1): alias bombs, recursive aliases and deep nesting are refused
with file:line, exit 2, quickly and in little memory, by the one loader every reader uses."""
from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from vigil import safe_yaml

SPEC_TEXT = (ROOT / "policy.yaml").read_text()


def alias_bomb(per_level: int = 9, levels: int = 8) -> str:
    """The issue's shape: each level is a list of `per_level` aliases of the level below."""
    lines = [f"a0: &a0 [{', '.join(['x'] * per_level)}]"]
    for level in range(1, levels + 1):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * per_level)}]")
    return "\n".join(lines) + "\n"


BOMB = alias_bomb()
DEEP_FLOW = "deep: " + "[" * 5000 + "]" * 5000 + "\n"
DEEP_BLOCK = "".join(f"{'  ' * i}k{i}:\n" for i in range(200)) + f"{'  ' * 200}end: 1\n"
DEEP_MAPPING = "deep: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n"
HOSTILE = {
    "alias bomb (9 per level, 8 levels)": (BOMB, "aliases expand"),
    "recursive alias": ("a: &a [1, *a]\n", "recursive"),
    "deep flow sequence": (DEEP_FLOW, "nested more than"),
    "deep block mapping": (DEEP_BLOCK, "nested more than"),
    "deep flow mapping": (DEEP_MAPPING, "nested more than"),
}


def _limit_memory() -> None:
    # The child may not take the machine with it if the guard is missing (today's code took 8.9 GB).
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_policy_is_refused_with_its_line_quickly_and_in_little_memory(tmp_path: Path, name: str) -> None:
    text, words = HOSTILE[name]
    policy = tmp_path / "policy.yaml"
    policy.write_text(SPEC_TEXT.replace("version: 1\n", "version: 1\n" + text, 1))
    # Measured in a child: load time and the peak of Python's allocations while loading.
    probe = (
        "import json, sys, time, tracemalloc\n"
        "from vigil.policy import PolicyError, load_policy\n"
        "tracemalloc.start(); started = time.perf_counter()\n"
        "try:\n    load_policy(sys.argv[1]); message = 'loaded'\n"
        "except PolicyError as exc:\n    message = str(exc)\n"
        "print(json.dumps({'seconds': time.perf_counter() - started, 'peak': tracemalloc.get_traced_memory()[1], 'message': message}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, str(policy)], capture_output=True, text=True, timeout=120,
                          preexec_fn=_limit_memory, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout)
    assert measured["message"].startswith(f"{policy}:"), measured["message"]
    line = int(measured["message"].split(":")[1])
    first = SPEC_TEXT[:SPEC_TEXT.index("version: 1\n")].count("\n") + 2  # the hostile text follows `version: 1`
    assert first <= line < first + text.count("\n")
    assert words in measured["message"]
    assert measured["seconds"] < 1.0  # the limit
    assert measured["peak"] < 100 * 2**20  # the limit (today's code: gigabytes)

    cli = subprocess.run([sys.executable, "-m", "vigil", "policy", "validate", str(policy)], capture_output=True,
                         text=True, timeout=120, preexec_fn=_limit_memory, check=False)
    assert cli.returncode == 2, cli.stderr[-2000:]
    assert f"{policy}:{line}:" in cli.stderr and "unexpected error" not in cli.stderr


def test_aliases_within_the_budget_still_load(tmp_path: Path) -> None:
    shared = "categories:\n  a: &cat {retain: P30D}\n  b: *cat\n"
    node, data = safe_yaml.parse(shared)
    assert data == {"categories": {"a": {"retain": "P30D"}, "b": {"retain": "P30D"}}}
    assert node is not None
    assert safe_yaml.safe_load(alias_bomb(per_level=3, levels=3)) is not None  # 3 + 9 + 27 aliased lists


def test_the_budget_counts_expanded_nodes_not_alias_events() -> None:
    # 40 aliases of one list of 300 items: few aliases, 12,000 expanded nodes.
    text = "base: &b [" + ", ".join("x" for _ in range(300)) + "]\n" + "".join(f"k{i}: *b\n" for i in range(40))
    with pytest.raises(yaml.MarkedYAMLError, match="aliases expand"):
        safe_yaml.safe_load(text)


READS_YAML = re.compile(r"\byaml\.(?:safe_|full_|unsafe_)?(?:load|load_all|compose|compose_all|parse)\(")


def test_every_yaml_reader_uses_the_safe_loader() -> None:
    """No module reads YAML past the guard: yaml.load/safe_load/compose appear only in safe_yaml.py."""
    offenders = []
    for folder in ("vigil", "checks", "retention", "evidence", "infra", "deploy"):
        for path in (ROOT / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if path.name != "safe_yaml.py" and READS_YAML.search(text):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []

