"""The control catalogue, loaded from `catalogue.yaml` (controls as data): each control's
metadata in one place, from its clause and frameworks to its remediation card."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from vigil import safe_yaml


@dataclass(frozen=True)
class Clause:
    seed: str  # the seed file the clause is quoted from
    section: str
    text: str
    notice: str = ""  # the notice's name (catalogue.yaml `notices:`), what a reader cites

    def cite(self) -> str:
        return f"\u201c{self.text}\u201d ({self.notice or self.seed}, s.{self.section})"


@dataclass(frozen=True)
class Remediation:
    """How to fix a control (placeholders `${name}` filled per finding by checks/remediation.py)."""

    summary: str
    cli: tuple[str, ...]
    pulumi: str

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "cli": list(self.cli), "pulumi": self.pulumi}


@dataclass(frozen=True)
class Control:
    id: str
    title: str
    severity: str
    clause: Clause
    also: tuple[Clause, ...]
    scope: str
    passes: str
    frameworks: dict[str, list[str]]
    remediation: Remediation
    services: tuple[str, ...] = ()  # the AWS services whose resources it judges (`--service` filters on them)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "severity": self.severity,
            "clause": self.clause.cite(),
            "frameworks": self.frameworks,
            "services": list(self.services),
            "scope": self.scope,
            "passes": self.passes,
        }


@cache
def catalogue() -> dict[str, Control]:
    data = safe_yaml.safe_load(resources.files("vigil.checks").joinpath("catalogue.yaml").read_text(encoding="utf-8"))
    notices = data.get("notices") or {}
    clauses = {name: Clause(**value, notice=notices.get(value["seed"], "")) for name, value in data["clauses"].items()}
    return {
        entry["id"]: Control(
            id=entry["id"],
            title=entry["title"],
            severity=entry["severity"],
            clause=clauses[entry["clause"]],
            also=tuple(clauses[name] for name in entry.get("also", [])),
            scope=entry["scope"],
            passes=entry["passes"],
            frameworks=entry["frameworks"],
            remediation=Remediation(summary=entry["remediation"]["summary"].strip(),
                                    cli=tuple(c.strip() for c in entry["remediation"]["cli"]),
                                    pulumi=entry["remediation"]["pulumi"].rstrip()),
            services=tuple(entry.get("services") or ()),
        )
        for entry in data["controls"]
    }
