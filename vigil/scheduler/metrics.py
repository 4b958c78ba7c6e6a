"""Prometheus textfile metrics (`--metrics-file PATH`), for node_exporter's textfile collector.

Counters survive between runs (a cron `vigil run` is a new process each time) by reading the
file back before adding; the file is replaced atomically so a scrape never sees half of it.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from vigil.scheduler.logs import EventLog
from vigil.scheduler.results import RunResult

METRICS = {
    # name: (type, help)
    "vigil_runs_total": ("counter", "Runs of each job, by exit code (cli.md)."),
    "vigil_findings_total": ("counter", "Findings of all check stages, by status."),
    "vigil_retention_actions_total": ("counter", "Retention actions completed (objects or records deleted, anonymized)."),
    "vigil_run_duration_seconds_total": ("counter", "Time spent in runs of each job."),
    "vigil_last_run_duration_seconds": ("gauge", "Duration of the last run of each job."),
    "vigil_last_run_exit_code": ("gauge", "Exit code of the last run of each job."),
    "vigil_last_run_timestamp_seconds": ("gauge", "When the last run of each job finished (Unix time)."),
}
_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{[^}]*\})? (?P<value>\S+)$")

Samples = dict[tuple[str, str], float]


def read_samples(path: Path) -> Samples:
    samples: Samples = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return samples
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and match["name"] in METRICS:
            try:
                samples[(match["name"], match["labels"] or "")] = float(match["value"])
            except ValueError:
                continue
    return samples


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}"


def record_run(path: Path, result: RunResult) -> None:
    samples = read_samples(path)

    def add(name: str, value: float, **labels: str) -> None:
        key = (name, _labels(**labels))
        samples[key] = samples.get(key, 0.0) + value

    def put(name: str, value: float, **labels: str) -> None:
        samples[(name, _labels(**labels))] = value

    add("vigil_runs_total", 1, job=result.job, exit_code=str(result.exit_code))
    for status, count in result.findings.items():
        add("vigil_findings_total", count, status=status)
    for action, count in result.retention.items():
        add("vigil_retention_actions_total", count, action=action)
    add("vigil_run_duration_seconds_total", result.duration_s, job=result.job)
    put("vigil_last_run_duration_seconds", result.duration_s, job=result.job)
    put("vigil_last_run_exit_code", result.exit_code, job=result.job)
    finished = result.finished_at or result.started_at
    put("vigil_last_run_timestamp_seconds", round(finished.timestamp(), 3), job=result.job)
    write_samples(path, samples)


def record_run_logged(path: Path, result: RunResult, log: EventLog) -> None:
    """Metrics are for watching the job, never a reason for it to fail: a write error is logged."""
    try:
        record_run(path, result)
    except OSError as exc:
        log.event("metrics.failed", level="warning", path=str(path), error=f"{type(exc).__name__}: {exc}"[:300])


def render(samples: Samples) -> str:
    out: list[str] = []
    for name, (kind, help_text) in METRICS.items():
        rows = sorted((labels, value) for (n, labels), value in samples.items() if n == name)
        if not rows:
            continue
        out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        out += [f"{name}{labels} {_number(value)}" for labels, value in rows]
    return "\n".join(out) + "\n"


def _number(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def write_samples(path: Path, samples: Samples) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(render(samples))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
