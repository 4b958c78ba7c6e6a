"""ENC-04: every DynamoDB table is encrypted server-side with a KMS key (SSEDescription KMS, ENABLED).

A table on the default AWS-owned key has no SSEDescription and fails: its key cannot be
reviewed or revoked.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Finding
from vigil.checks.registry import evaluator
from vigil.checks.scope import listing_errors
from vigil.checks.verdicts import errored, verdict

ID = "ENC-04"


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    yield from listing_errors(ctx, ID, (("dynamodb", "table/*"),))
    for table in ctx.inventory.tables.values():
        if not table.description.ok:
            yield errored(ID, table.arn, table.region, table.description)
            continue
        sse = (table.description.value or {}).get("SSEDescription") or {}
        ok = sse.get("Status") == "ENABLED" and sse.get("SSEType") == "KMS"
        if ok:
            reason = f"encrypted with KMS key {sse.get('KMSMasterKeyArn', '(unnamed)')}"
        elif sse:
            reason = f"server-side encryption is {sse.get('Status')} ({sse.get('SSEType')}); enable SSE with a KMS key"
        else:
            reason = "the table uses the default AWS-owned key; enable SSE with a KMS key (SSESpecification SSEType KMS)"
        yield verdict(ID, table.arn, table.region, ok, reason, "dynamodb:DescribeTable", {"SSEDescription": sse or None})
