"""What every collector shares: one call -> one Fact, with AWS errors kept as facts."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.exceptions
from vigil.checks.model import Fact

from vigil.aws import Aws
from vigil.policy import Policy

T = TypeVar("T")

DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden", "403"}
NOT_IMPLEMENTED = {"NotImplemented", "NotImplementedException", "InvalidAction", "UnknownOperationException", "UnsupportedOperation", "501"}


@dataclass
class CollectSession:
    """What a collector needs: clients, the policy (which roles and stores matter), regions, a pool."""

    aws: Aws
    policy: Policy
    regions: list[str]
    pool: Executor

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self.pool.submit(fn, *args)


def describe_error(api: str, exc: Exception) -> str:
    """A sentence naming the API and why it failed (denied, not implemented, throttled, ...)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "")) or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        message = exc.response.get("Error", {}).get("Message", "") or ""
        if code in DENIED:
            return f"{api} was denied ({code}); grant it to the checking role"
        if code in NOT_IMPLEMENTED or "not yet implemented" in message.lower() or "not implemented" in message.lower():
            return f"{api} is not implemented by this endpoint ({code or 'no code'})"
        if code in ("Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown", "RequestLimitExceeded"):
            return f"{api} was throttled past the retry limit ({code})"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status and int(status) >= 500:
            detail = "" if code in ("", str(status)) else f" {code}"
            return f"{api} failed on the server side (HTTP {status}{detail}); the endpoint may not implement it"
        return f"{api} failed: {code}: {message}".rstrip(": ")
    if isinstance(exc, NotImplementedError):
        return f"{api} is not implemented by this endpoint"
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"{api} could not reach the endpoint: {exc}"
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return f"{api} failed: {exc}"
    return f"{api} failed: {type(exc).__name__}: {exc}"


def fetch(api: str, call: Callable[[], T], absent: Iterable[str] = ()) -> Fact[T]:
    """Run `call`; an error code listed in `absent` means "not configured" (value None), not a failure."""
    absent = set(absent)
    try:
        return Fact(api, call())
    except botocore.exceptions.ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code", "")) in absent:
            return Fact(api, None)
        return Fact(api, error=describe_error(api, exc))
    except (botocore.exceptions.BotoCoreError, NotImplementedError) as exc:
        return Fact(api, error=describe_error(api, exc))
