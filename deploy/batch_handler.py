"""AWS Lambda entry point for S3 Batch Operations jobs that vigil creates (`--executor batch-operations`).

The job invokes it once per planned version (LambdaInvoke, invocation schema 2.0); the work and
its safety checks are in vigil.retention.batch_ops. The policy comes from the environment, never
from the event: VIGIL_POLICY (default: policy.yaml packaged beside this handler); the region is
the function's own (AWS_REGION), the region of the bucket the job runs against. The keys a
rewrite needs (the policy's `keys:` source, e.g. a KMS-encrypted data key) and the accounts'
closing dates are read once per container and reused by the invocations it serves.
"""
from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vigil.retention.batch_ops import Shared, handle

from vigil.aws import Aws
from vigil.policy import load_policy

HERE = Path(__file__).resolve().parent
_SHARED: dict[str, Shared] = {}  # policy sha256 -> what this container's invocations share


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    policy = load_policy(Path(os.environ.get("VIGIL_POLICY", HERE / "policy.yaml")))
    region = os.environ.get("AWS_REGION") or policy.regions.primary
    shared = _SHARED.setdefault(policy.sha256, Shared(policy))  # by content: each load is a new object
    return handle(Aws(endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None), shared.policy, event, datetime.now(UTC),
                  region, shared)
