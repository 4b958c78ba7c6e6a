"""The accounts of a run: every account of the AWS Organization, or the ones an accounts file names.

The accounts file is a subset of c7n-org's: a YAML list (or `accounts:` holding one) of
`{account_id, name, role, retention_role, external_id, regions, policy}`, only `account_id`
required. It is read with the project's safe YAML loader; every problem names file:line:key.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.exceptions
import yaml
from pydantic import ValidationError

from vigil import safe_yaml
from vigil.aws import Aws
from vigil.errors import EnvironmentFailure, UsageError
from vigil.policy.loader import _Lines, _message, dotted
from vigil.policy.models import AccountId, Region, Strict

from .model import Account, AccountsOptions


class AccountEntry(Strict):
    account_id: AccountId
    name: str = ""
    role: str | None = None  # NAME or ARN; default --role-name
    retention_role: str | None = None  # NAME or ARN; default --retention-role-name
    external_id: str | None = None  # default --external-id / VIGIL_EXTERNAL_ID
    regions: list[Region] | None = None
    policy: str | None = None  # this account's own policy file, relative to the accounts file


def _error(file: Path, line: int, path: tuple[str | int, ...], message: str) -> UsageError:
    return UsageError(f"{file}:{line}: {dotted(path) or '(top level)'}: {message}")


def load_accounts_file(path: str | Path, options: AccountsOptions) -> list[Account]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--accounts-file {file}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        root, data = safe_yaml.parse(text, safe_yaml.Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        raise _error(file, mark.line + 1 if mark else 1, (), f"YAML: {getattr(exc, 'problem', None) or exc}") from None
    lines = _Lines(root)
    if lines.duplicates:
        first = lines.duplicates[0]
        raise _error(file, first.line, first.path, first.message)
    prefix: tuple[str | int, ...] = ()
    if isinstance(data, dict) and set(data) == {"accounts"}:
        data, prefix = data["accounts"], ("accounts",)
    if not isinstance(data, list) or not data:
        raise _error(file, 1, prefix, "expected a non-empty list of accounts ({account_id: '123456789012', ...})")
    accounts: list[Account] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(data):
        where = (*prefix, index)
        try:
            entry = AccountEntry.model_validate(item)
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = (*where, *error["loc"])
            raise _error(file, lines.line_of(loc), loc, _message(error)) from None
        if entry.account_id in seen:
            loc = (*where, "account_id")
            raise _error(file, lines.line_of(loc), loc, f"account {entry.account_id} is listed twice (also item {seen[entry.account_id]})")
        seen[entry.account_id] = index
        policy = (file.parent / entry.policy) if entry.policy else None
        if policy is not None and not policy.is_file():
            loc = (*where, "policy")
            raise _error(file, lines.line_of(loc), loc, f"policy file {policy} not found")
        accounts.append(Account(entry.account_id, entry.name, "ACTIVE", entry.role or options.role_name,
                                entry.retention_role or options.retention_role_name,
                                entry.external_id or options.external_id, tuple(entry.regions or ()), policy))
    return accounts


def list_org_accounts(aws: Aws, region: str, options: AccountsOptions) -> list[Account]:
    """Every account of the caller's organization (organizations:ListAccounts, all pages), in every state."""
    client = aws.client("organizations", region)
    accounts: list[Account] = []
    try:
        for page in client.get_paginator("list_accounts").paginate():
            for item in page.get("Accounts", []):
                state = str(item.get("State") or item.get("Status") or "UNKNOWN")
                accounts.append(Account(item["Id"], item.get("Name", ""), state, options.role_name,
                                        options.retention_role_name, options.external_id))
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise EnvironmentFailure(f"--org: organizations:ListAccounts failed ({error.get('Code', '')}: {error.get('Message', '')}); "
                                 "run from the management account or a delegated administrator, or name the "
                                 "accounts with --accounts-file") from None
    except botocore.exceptions.BotoCoreError as exc:
        raise EnvironmentFailure(f"--org: organizations:ListAccounts failed: {exc}") from None
    return sorted(accounts, key=lambda a: a.id)


def resolve(aws: Aws, region: str, options: AccountsOptions) -> list[Account]:
    """The run's accounts, active or not (the caller lists the others as skipped, never drops them)."""
    if options.org and options.file is not None:
        raise UsageError("--org and --accounts-file choose the accounts two ways: give one")
    if options.parallel < 1:
        raise UsageError("--accounts-parallel must be at least 1")
    if options.file is not None:
        return load_accounts_file(options.file, options)
    return list_org_accounts(aws, region, options)


def to_yaml(accounts: list[Account]) -> str:
    """An accounts file for review (`vigil accounts list --org > accounts.yaml`); other states as comments."""
    lines = ["# vigil accounts file: one entry per account to check (only account_id is required)"]
    for account in accounts:
        entry: dict[str, Any] = {"account_id": account.id, "name": account.name}
        text = yaml.safe_dump([entry], sort_keys=False, default_flow_style=False).rstrip("\n")
        if not account.active:
            lines.append(f"# {account.state}, not checked:")
            text = "\n".join(f"# {line}" for line in text.splitlines())
        lines.append(text)
    return "\n".join(lines) + "\n"
