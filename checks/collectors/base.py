"""What every collector shares: one call -> one Fact, with AWS errors kept as facts."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, TypeVar

import botocore.exceptions
from vigil.checks.model import BucketFacts, Fact

from vigil.aws import Aws, describe_error
from vigil.policy import Policy

T = TypeVar("T")


@dataclass
class CollectSession:
    """What a collector needs: clients, the policy (which roles and stores matter), regions, a pool."""

    aws: Aws
    policy: Policy
    regions: list[str]
    pool: Executor
    bucket_facts: BucketFacts | None = None  # the S3 facts to read; None: all of them, for every bucket

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self.pool.submit(fn, *args)


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
