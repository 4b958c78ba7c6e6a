"""What every stage that reads AWS shares: where (policy, endpoint, regions, profile), when, and the output folder."""
from __future__ import annotations

import os
import secrets
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from vigil import safe_write
from vigil.accounts.model import AccountsOptions
from vigil.errors import ExitCode, UsageError, VigilError
from vigil.policy import Policy, PolicyError
from vigil.timestamps import compact_z

Options = TypeVar("Options")
Outcome = TypeVar("Outcome")

DEFAULT_OUTPUT = Path("evidence")  # cli.md: results go to ./evidence/<run-id>/ unless --output says otherwise


@dataclass(frozen=True)
class Target:
    """The account a stage reads and the folder it writes."""

    policy: str | Path = "policy.yaml"
    endpoint_url: str | None = None
    regions: tuple[str, ...] = ()  # empty: the policy's regions
    profile: str | None = None
    as_of: datetime | None = None  # None: now
    output: str | Path | None = None  # None: ./evidence/<run-id>/
    accounts: AccountsOptions = field(default_factory=AccountsOptions)  # --org / --accounts-file: many accounts

    def when(self) -> datetime:
        return self.as_of or datetime.now(UTC)

    def regions_for(self, policy: Policy) -> list[str]:
        return list(dict.fromkeys(self.regions)) if self.regions else policy.regions_in_scope

    def output_dir(self, run_id: str) -> Path:
        path = Path(self.output) if self.output else DEFAULT_OUTPUT / run_id
        return safe_write.ensure_dir(path, "--output")


def new_run_id(now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{compact_z(now)}-{secrets.token_hex(3)}"


def parse_as_of(value: str | None) -> datetime | None:
    """--as-of's text as an aware datetime (UTC when no zone is given); None when not given."""
    if not value:
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise UsageError(f"--as-of {value!r} is not an ISO 8601 date or timestamp (e.g. 2027-06-01 or 2027-06-01T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def run_stage(function: Callable[[Options], Outcome], options: Options) -> tuple[ExitCode, str, Outcome | None]:
    """Run one stage: (exit code, error message, outcome). An exception ends the stage, never its caller's job."""
    try:
        outcome = function(options)
    except (Exception, KeyboardInterrupt) as exc:
        code, message = failure(exc)
        if unexpected(exc) and os.environ.get("VIGIL_DEBUG"):
            traceback.print_exc()
        return code, message, None
    return ExitCode(int(getattr(outcome, "exit_code", 0))), "", outcome


def unexpected(exc: BaseException) -> bool:
    """A bug rather than bad input, a broken environment or an interrupt: worth a traceback under VIGIL_DEBUG."""
    return not isinstance(exc, (PolicyError, VigilError, KeyboardInterrupt, OSError))


def failure(exc: BaseException) -> tuple[ExitCode, str]:
    """The exit code and message for an exception that ended a stage (cli.md), one mapping for every caller."""
    if isinstance(exc, PolicyError):
        return ExitCode.USAGE, f"invalid policy file\n{exc}"
    if isinstance(exc, VigilError):
        return ExitCode(exc.exit_code), str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED, "interrupted"
    if isinstance(exc, OSError):  # a file or folder that could not be read or written: bad input or the environment
        error = safe_write.failure(exc, doing="read or write")
        return ExitCode(error.exit_code), str(error)
    return ExitCode.FAILED, f"unexpected error: {type(exc).__name__}: {exc}"
