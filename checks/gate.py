"""The exit code of a check: which unwaived fail/error findings count (`--fail-on`, `--baseline`).

Default (cli.md): any unwaived fail or error exits 1. `--fail-on high` counts only findings of
high or critical controls. `--baseline findings.json` counts only findings that are new since
that file (not fail/error there for the same account, control and resource); waivers stay the
way to accept a risk for longer. Pure: findings.json documents in, the counted findings out.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vigil.errors import UsageError

from .selection import SEVERITIES

PROBLEMS = ("fail", "error")


def _key(finding: dict[str, Any], run: dict[str, Any]) -> tuple[str, str, str]:
    return str(finding.get("account") or run.get("account") or ""), str(finding.get("control")), str(finding.get("resource"))


def load_baseline(path: str | Path) -> set[tuple[str, str, str]]:
    """(account, control, resource) of every fail/error finding in an earlier findings.json."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return {_key(f, data["run"]) for f in data["findings"] if f.get("status") in PROBLEMS}
    except FileNotFoundError:
        raise UsageError(f"--baseline {path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"--baseline {path}: not a findings.json ({type(exc).__name__}: {exc})") from None


def counted(document: dict[str, Any], fail_on: str | None = None, baseline: set[tuple[str, str, str]] | None = None
            ) -> list[dict[str, Any]]:
    """The unwaived fail/error findings that decide the exit code, given the threshold and the baseline."""
    severity = {str(c.get("id")): str(c.get("severity", "")) for c in document.get("controls") or []}
    worst_allowed = SEVERITIES.index(fail_on) if fail_on else len(SEVERITIES) - 1
    out = []
    for finding in document["findings"]:
        if finding.get("status") not in PROBLEMS or finding.get("waived"):
            continue
        rank = SEVERITIES.index(severity[finding["control"]]) if severity.get(finding["control"]) in SEVERITIES else 0
        if rank > worst_allowed:
            continue
        if baseline is not None and _key(finding, document["run"]) in baseline:
            continue
        out.append(finding)
    return out


def is_new(finding: dict[str, Any], run: dict[str, Any], baseline: set[tuple[str, str, str]] | None) -> bool:
    return baseline is not None and _key(finding, run) not in baseline
