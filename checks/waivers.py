"""Waivers (accepted risks) applied to findings.

A waiver from the policy file's `waivers:` section names a control and a resource (an ARN
or a glob: `arn:aws:s3:::legacy-*`). While it is in force (today is on or before its
`expires` date) a fail or error finding it matches keeps its real status but is marked
waived and no longer fails the run. Pass and not-applicable findings are never waived:
there is no risk to accept. Every waiver is reported with its state:

* `active`: in force and waiving at least one finding;
* `expired`: past its expiry date; it waives nothing (the findings fail again);
* `stale`: in force but matching no fail/error finding (fixed, renamed or never existed),
  so it should be removed from the policy.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from vigil.checks.catalogue import catalogue
from vigil.checks.model import Finding, Status

from vigil.policy import Policy, load_policy
from vigil.policy.models import Waiver
from vigil.policy.rules import Issue

ACTIVE, EXPIRED, STALE = "active", "expired", "stale"
WAIVABLE = (Status.FAIL, Status.ERROR)


def unknown_controls(policy: Policy) -> Iterator[Issue]:
    """A waiver must name a control of the catalogue (checked when the policy file is loaded)."""
    known = catalogue()
    for index, waiver in enumerate(policy.waivers):
        if waiver.control not in known:
            yield ("waivers", index, "control"), f"unknown control id '{waiver.control}' (see 'vigil controls')"


def load_checked_policy(path: str | Path) -> Policy:
    """The policy file, validated, with its waivers' control ids checked against the catalogue."""
    return load_policy(path, rules=(unknown_controls,))


@dataclass(frozen=True)
class WaiverState:
    index: int  # position in the policy's `waivers:` list
    waiver: Waiver
    state: str
    matches: tuple[str, ...]  # resources of the fail/error findings it waives (or would, if expired)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy_key": f"waivers[{self.index}]",
            **({"account": self.waiver.account} if self.waiver.account else {}),
            "control": self.waiver.control,
            "resource": self.waiver.resource,
            "reason": self.waiver.reason,
            "owner": self.waiver.owner,
            "approval": self.waiver.approval,
            "expires": self.waiver.expires.isoformat(),
            "state": self.state,
            "matches": list(self.matches),
        }


def waiver_json(waiver: Waiver) -> dict[str, str]:
    """What a waived finding carries in findings.json (`"waived": {...}`)."""
    return {**({"account": waiver.account} if waiver.account else {}), "reason": waiver.reason, "owner": waiver.owner, "approval": waiver.approval, "expires": waiver.expires.isoformat()}


def matches(waiver: Waiver, finding: Finding) -> bool:
    return waiver.control == finding.control and waiver.account in (None, finding.account) and (
        waiver.resource == finding.resource or fnmatch.fnmatchcase(finding.resource, waiver.resource)
    )


def in_force(waiver: Waiver, today: date) -> bool:
    return today <= waiver.expires


def apply_waivers(waivers: Iterable[Waiver], findings: Iterable[Finding], today: date
                  ) -> tuple[dict[tuple[str, str], Waiver], list[WaiverState]]:
    """(control, resource) -> the first waiver in force that covers it; and each waiver's state."""
    problems = [f for f in findings if f.status in WAIVABLE]
    waived: dict[tuple[str, str], Waiver] = {}
    states: list[WaiverState] = []
    for index, waiver in enumerate(waivers):
        hits = tuple(sorted(f.resource for f in problems if matches(waiver, f)))
        if not in_force(waiver, today):
            states.append(WaiverState(index, waiver, EXPIRED, hits))
            continue
        for finding in problems:
            if matches(waiver, finding):
                waived.setdefault((finding.control, finding.resource), waiver)
        states.append(WaiverState(index, waiver, ACTIVE if hits else STALE, hits))
    return waived, states
