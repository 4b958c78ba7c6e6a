"""What a job did: per-stage outcome, the run's exit code, and counts read back from its folder."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.errors import ExitCode
from vigil.timestamps import iso_z as _iso

SCHEMA = "vigil.run/v1"


@dataclass
class StageResult:
    stage: str
    status: str  # ok | failed | abandoned | "skipped: <why>" | "abandoned: <why>"
    exit_code: int | None = None
    duration_s: float | None = None
    message: str = ""


@dataclass
class RunResult:
    job: str
    run_id: str
    run_dir: str
    apply: bool
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    stages: list[StageResult] = field(default_factory=list)
    findings: dict[str, int] = field(default_factory=dict)
    retention: dict[str, int] = field(default_factory=dict)
    stopped_early: bool = False

    @property
    def ran(self) -> list[StageResult]:
        return [s for s in self.stages if s.exit_code is not None]

    @property
    def interrupted(self) -> bool:
        return any(s.exit_code == ExitCode.INTERRUPTED for s in self.stages)

    @property
    def exit_code(self) -> int:
        """cli.md: the worst stage wins (0 < 1 < 2 < 3); an interrupted run exits 130."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        return max((s.exit_code for s in self.ran if s.exit_code is not None), default=0)

    @property
    def duration_s(self) -> float:
        end = self.finished_at or datetime.now(UTC)
        return round((end - self.started_at).total_seconds(), 3)

    def finish(self) -> None:
        self.finished_at = datetime.now(UTC)

    def summary_fields(self) -> dict[str, Any]:
        """The run summary line: one event with everything an operator alerts on."""
        return {
            "job": self.job, "run_id": self.run_id, "run_dir": self.run_dir, "apply": self.apply,
            "exit_code": self.exit_code, "duration_s": self.duration_s,
            "stages": {s.stage: s.status if s.exit_code is None else s.exit_code for s in self.stages},
            "findings": self.findings, "retention": self.retention,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, **self.summary_fields(),
            "started_at": _iso(self.started_at), "finished_at": _iso(self.finished_at) if self.finished_at else None,
            "stages": [asdict(s) for s in self.stages],
        }



def findings_summary(run_dir: Path) -> dict[str, int]:
    """findings.json's summary (cli.md: pass/fail/error/not_applicable), or {} if check wrote none."""
    try:
        summary = json.loads((run_dir / "findings.json").read_text(encoding="utf-8")).get("summary", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): int(v) for k, v in summary.items() if isinstance(v, int)}


def retention_counts(run_dir: Path) -> dict[str, int]:
    """Units done per kind ("deleted", "anonymized"), from ledger.jsonl's outcome lines.

    The ledger writes an intent line before each action and an outcome line after it (cli.md);
    only outcomes count, so an action cut short by a crash counts nothing. An outcome's
    target carries the number of units actually done ("count"); without one, an "ok" is one.
    """
    counts: dict[str, int] = {}
    lines: list[str] = []
    for ledger in [run_dir / "ledger.jsonl", *sorted(run_dir.glob("accounts/*/ledger.jsonl"))]:  # many accounts: one each
        try:
            lines += ledger.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a torn last line after a kill
        if not isinstance(entry, dict) or entry.get("phase") != "outcome":
            continue
        target = entry["target"] if isinstance(entry.get("target"), dict) else {}
        done = target.get("count")
        units = done if isinstance(done, int) else (1 if entry.get("outcome") == "ok" else 0)
        kind = _kind(str(entry.get("action", "")))
        if units and kind:
            counts[kind] = counts.get(kind, 0) + units
    return counts


def _kind(action: str) -> str:
    if "anonymize" in action:
        return "anonymized"
    if "delete" in action or action == "rewrite_object":  # rewrite_object drops expired records
        return "deleted"
    return action
