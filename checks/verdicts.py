"""Small constructors so evaluators read as rules, not bookkeeping."""
from __future__ import annotations

from typing import Any

from vigil.checks.model import Evidence, Fact, Finding, Status


def verdict(control: str, resource: str, region: str, ok: bool, reason: str, api: str | list[str], observed: Any) -> Finding:
    return Finding(control, resource, region, Status.PASS if ok else Status.FAIL, reason, Evidence(api, observed))


def passed(control: str, resource: str, region: str, reason: str, api: str | list[str], observed: Any) -> Finding:
    return Finding(control, resource, region, Status.PASS, reason, Evidence(api, observed))


def failed(control: str, resource: str, region: str, reason: str, api: str | list[str], observed: Any) -> Finding:
    return Finding(control, resource, region, Status.FAIL, reason, Evidence(api, observed))


def errored(control: str, resource: str, region: str, fact: Fact) -> Finding:
    return Finding(control, resource, region, Status.ERROR, fact.error or "could not be evaluated", Evidence(fact.api, None))


def not_applicable(control: str, resource: str, region: str, reason: str, api: str | list[str] = "vigil", observed: Any = None) -> Finding:
    return Finding(control, resource, region, Status.NOT_APPLICABLE, reason, Evidence(api, observed))


def first_error(*facts: Fact) -> Fact | None:
    return next((fact for fact in facts if not fact.ok), None)

