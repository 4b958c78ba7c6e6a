"""How a run's accounts are chosen, and what it knows about each one."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_AUDIT_ROLE = "vigil-audit"  # read-only: check
DEFAULT_RETENTION_ROLE = "vigil-retention"  # least privilege to delete and anonymize: retain
DEFAULT_PARALLEL = 4
OK, ERROR, SKIPPED = "ok", "error", "skipped"


@dataclass(frozen=True)
class AccountsOptions:
    """The "Many accounts" flags. Neither `org` nor `file`: one account, the caller's (nothing changes)."""

    org: bool = False
    file: str | Path | None = None
    role_name: str = DEFAULT_AUDIT_ROLE
    retention_role_name: str = DEFAULT_RETENTION_ROLE
    external_id: str | None = field(default_factory=lambda: os.environ.get("VIGIL_EXTERNAL_ID") or None)
    parallel: int = DEFAULT_PARALLEL

    @property
    def many(self) -> bool:
        return self.org or self.file is not None

    @classmethod
    def from_args(cls, args: Any) -> AccountsOptions:
        """From the command line's flags (vigil.cli.common.add_accounts_flags); a command without them reaches one account."""
        if not hasattr(args, "org"):
            return cls()
        return cls(org=args.org, file=args.accounts_file, role_name=args.role_name,
                   retention_role_name=getattr(args, "retention_role_name", DEFAULT_RETENTION_ROLE),
                   external_id=args.external_id, parallel=args.accounts_parallel)


def role_arn(account_id: str, role: str) -> str:
    """A role NAME becomes arn:aws:iam::<id>:role/NAME; an ARN is taken as written."""
    return role if role.startswith("arn:") else f"arn:aws:iam::{account_id}:role/{role}"


@dataclass(frozen=True)
class Account:
    id: str
    name: str = ""
    state: str = "ACTIVE"  # organizations:ListAccounts State; accounts-file entries are ACTIVE
    role: str = DEFAULT_AUDIT_ROLE  # NAME or ARN
    retention_role: str = DEFAULT_RETENTION_ROLE
    external_id: str | None = None
    regions: tuple[str, ...] = ()  # empty: the run's regions
    policy: Path | None = None  # this account's own policy file; None: the run's

    @property
    def active(self) -> bool:
        return self.state == "ACTIVE"

    @property
    def root(self) -> str:
        """The resource an account-wide error is about."""
        return f"arn:aws:iam::{self.id}:root"

    def role_arn(self, retention: bool = False) -> str:
        return role_arn(self.id, self.retention_role if retention else self.role)

    def status(self, status: str, reason: str = "") -> dict[str, str]:
        """One entry of findings.json's run.accounts."""
        return {"id": self.id, "name": self.name, "status": status, "reason": reason}

    def skipped(self) -> dict[str, str]:
        return self.status(SKIPPED, f"account state is {self.state}, not ACTIVE: not checked")
