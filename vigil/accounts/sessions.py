"""One session per account, on botocore's refreshable assumed-role credentials.

A role assumed from another role (role chaining) lasts at most one hour, and a long
retention run outlives that: the credentials are botocore's DeferredRefreshableCredentials
around an AssumeRoleCredentialFetcher, so botocore assumes the role again before they
expire (from 15 minutes ahead), for every client of the account, thread-safely.
"""
from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions
import botocore.session
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

from vigil.aws import Aws
from vigil.errors import EnvironmentFailure

from .model import Account


class Unreachable(Exception):
    """The account's role could not be assumed, or the session is not in the account it should be."""


def session_name(run_id: str) -> str:
    """`vigil-<run-id>`, within AssumeRole's 64 characters of [\\w+=,.@-] (CloudTrail shows it in every member account)."""
    return f"vigil-{run_id}"[:64]


def assume(base: Aws, account: Account, run_id: str, region: str, *, retention: bool = False,
           duration_seconds: int | None = None, max_pool: int = 32) -> Aws:
    """An Aws whose every client works in `account` through its role; raises Unreachable with the reason in words."""
    source = base.session.get_credentials()
    if source is None:
        raise Unreachable("no AWS credentials to assume the role from (environment, profile or instance role)")
    role = account.role_arn(retention)
    extra: dict[str, Any] = {"RoleSessionName": session_name(run_id)}
    if account.external_id:
        extra["ExternalId"] = account.external_id
    if duration_seconds:
        extra["DurationSeconds"] = duration_seconds

    def sts_client(service: str, **credentials: Any) -> Any:  # the fetcher's STS client: the caller's endpoint and region
        return base.session.client(service, region_name=region, endpoint_url=base.endpoint_url, **credentials)

    fetcher = AssumeRoleCredentialFetcher(sts_client, source, role, extra_args=extra)
    try:  # assume now, through the fetcher itself (its answer is cached for the credentials below), so that an
        fetcher.fetch_credentials()  # unreachable account is known before anything runs, and botocore logs no traceback
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise Unreachable(f"could not assume {role}: {error.get('Code', 'error')}: {error.get('Message', '')}".rstrip(": ")) from None
    except botocore.exceptions.BotoCoreError as exc:
        raise Unreachable(f"could not assume {role}: {exc}") from None
    credentials = DeferredRefreshableCredentials(refresh_using=fetcher.fetch_credentials, method="assume-role")
    core = botocore.session.Session()
    core._credentials = credentials  # botocore's documented hook for refreshable credentials on a session
    core.set_config_variable("region", region)
    aws = Aws(endpoint_url=base.endpoint_url, max_pool=max_pool, session=boto3.Session(botocore_session=core))
    try:
        reached = aws.account_id(region)
    except EnvironmentFailure as exc:  # the role's credentials were refused
        raise Unreachable(f"assumed {role} but its credentials were refused: {exc}") from None
    if reached != account.id:
        raise Unreachable(f"assumed {role} but landed in account {reached}, not {account.id}")
    return aws
