"""The least-privilege IAM policy the scheduled job needs (deploy/iam-policy.json).

The job runs check, retain and the subject requests, then its report uploads the pack, signs it
and takes its locks. Every action comes from `vigil.permissions` (derived from the code that
calls AWS), scoped to the policy's stores, the replicas their replication rules name, the
evidence bucket, the lock prefix and the signing key. Nothing is listed here by hand.

    python -m vigil.scheduler.iam policy.yaml --evidence-bucket B [--lock-bucket B] > deploy/iam-policy.json

Replicas come from replication rules: by default the rules the stack (infra/) declares for the
policy, or with --discover-replicas the rules live on the account.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from vigil.aws import Aws
from vigil.permissions import Targets, build, destinations, discover_replicas, job_parts
from vigil.policy import Policy, load_policy

REPLICATION_CONFIG = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"


def job_policy(policy: Policy, replicas: Mapping[str, Iterable[str]], evidence_bucket: str | None = None,
               lock_bucket: str | None = None, signing_key: str | None = None, account: str = "*") -> dict[str, Any]:
    """The job's IAM policy document; `replicas`: store bucket -> the buckets its replication rules copy to."""
    key = signing_key.removeprefix("kms:") if signing_key else None
    targets = Targets.of(policy, policy.regions_in_scope, account, replicas, evidence_bucket=evidence_bucket,
                         lock_bucket=lock_bucket, signing_key=key)
    return build(job_parts(targets), targets)


def declared_replicas(policy: Policy) -> dict[str, list[str]]:
    """Store bucket -> replica buckets, from the replication rules the stack declares for this policy."""
    from vigil.infra.mocks import declare_stack  # Pulumi is needed only to generate the file

    out: dict[str, list[str]] = {}
    for resource in declare_stack(policy).resources:
        if resource.type == REPLICATION_CONFIG:
            out.setdefault(resource.inputs["bucket"], []).extend(destinations(resource.inputs.get("rules", [])))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vigil.scheduler.iam", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("policy")
    parser.add_argument("--evidence-bucket")
    parser.add_argument("--lock-bucket")
    parser.add_argument("--signing-key", help="the KMS key that signs evidence: ARN, key id or alias/NAME")
    parser.add_argument("--account", default="*", help="account id for resource ARNs (default *)")
    parser.add_argument("--discover-replicas", action="store_true", help="read the replication rules live instead of the stack's")
    parser.add_argument("--endpoint-url", help="for --discover-replicas: send the calls here (a local emulator)")
    parser.add_argument("--profile", help="for --discover-replicas: AWS profile")
    args = parser.parse_args(argv)
    policy = load_policy(args.policy)
    replicas = (discover_replicas(Aws(profile=args.profile, endpoint_url=args.endpoint_url), policy)
                if args.discover_replicas else declared_replicas(policy))
    document = job_policy(policy, replicas, args.evidence_bucket, args.lock_bucket, args.signing_key, args.account)
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
