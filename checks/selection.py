"""Which controls a run evaluates: `--control`, `--severity`, `--service`, `--framework`, `--skip-control`.

Pure: the catalogue and the filters in, the chosen ids and, for every other control, the reason
it was not evaluated (recorded in findings.json as `not_evaluated`, shown and counted in the
report). Unknown values are bad input (exit 2), never an empty run that looks clean.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vigil.checks.catalogue import Control

from vigil.errors import UsageError

SEVERITIES = ("critical", "high", "medium", "low", "info")  # worst first


@dataclass(frozen=True)
class Filters:
    controls: tuple[str, ...] = ()  # --control: only these
    severities: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()  # --skip-control

    @property
    def any(self) -> bool:
        return any((self.controls, self.severities, self.services, self.frameworks, self.skip))


@dataclass(frozen=True)
class Selection:
    chosen: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)  # control id -> why it was not evaluated


def split(values: Iterable[str] | None) -> tuple[str, ...]:
    """`--severity high,critical --severity low` -> ("high", "critical", "low"), lower-cased, in order, once each."""
    return tuple(dict.fromkeys(part.strip().lower() for value in values or () for part in value.split(",") if part.strip()))


def _check_known(kind: str, given: Iterable[str], known: Iterable[str], hint: str) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise UsageError(f"unknown {kind} {', '.join(unknown)} (known: {', '.join(sorted(set(known)))}; {hint})")


def select(controls: Mapping[str, Control], filters: Filters) -> Selection:
    only = tuple(c.upper() for c in filters.controls)
    skip = tuple(c.upper() for c in filters.skip)
    _check_known("control id", [*only, *skip], controls, "see 'vigil controls'")
    _check_known("severity", filters.severities, SEVERITIES, "--severity takes a comma-separated list")
    _check_known("service", filters.services, {s for c in controls.values() for s in c.services}, "see 'vigil controls'")
    _check_known("framework", filters.frameworks, {f for c in controls.values() for f in c.frameworks}, "see 'vigil controls'")
    chosen, skipped = [], {}
    for cid, control in controls.items():
        if only and cid not in only:
            skipped[cid] = f"not selected (--control {','.join(only)})"
        elif cid in skip:
            skipped[cid] = "skipped (--skip-control)"
        elif filters.severities and control.severity not in filters.severities:
            skipped[cid] = f"not selected (--severity {','.join(filters.severities)}; this control is {control.severity})"
        elif filters.services and not set(control.services) & set(filters.services):
            skipped[cid] = f"not selected (--service {','.join(filters.services)}; this control reads {','.join(control.services)})"
        elif filters.frameworks and not any(control.frameworks.get(f) for f in filters.frameworks):
            skipped[cid] = f"not selected (--framework {','.join(filters.frameworks)}: not mapped to it)"
        else:
            chosen.append(cid)
    return Selection(tuple(chosen), skipped)
