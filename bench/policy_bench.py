"""Benchmark the bucket-policy controls (TLS-01, TLS-02, MFA-03, ACC-02) against a raw loop.

Each bucket (distinct names, so no cache is shared between buckets) carries the stack's own
bucket policy, or the same denies split across statements by action (`NotAction s3:Get*` +
`Action s3:Get*`), which the exact coverage reading has to combine. The raw loop parses the
same JSON and makes the strict one-statement shape test a simple linter would (Deny, "*",
"s3:*", both resources, one condition). Prints figures; asserts nothing.

    .venv/bin/python bench/policy_bench.py [--buckets 2000] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vigil.checks.context import Context  # noqa: E402
from vigil.checks.controls import acc_02, mfa_03, tls_01, tls_02  # noqa: E402
from vigil.checks.model import Bucket, Fact, Inventory  # noqa: E402
from vigil.infra.components import bucket_policy  # noqa: E402

from vigil.policy import load_policy  # noqa: E402

CONTROLS = (tls_01, tls_02, mfa_03, acc_02)
ROLES = [f"arn:aws:iam::123456789012:role/{name}" for name in ("vigil-replication", "vigil-backup", "vigil-retention")]


def document(name: str, split: bool) -> str:
    statements = [bucket_policy.deny_plain_http(name), bucket_policy.deny_old_tls(name), bucket_policy.deny_without_mfa(name, ROLES)]
    if split:  # each s3:* deny as two statements that only together cover every action
        halves = []
        for statement in statements[:2]:
            halves += [{**{k: v for k, v in statement.items() if k != "Action"}, "NotAction": "s3:Get*"}, {**statement, "Action": "s3:Get*"}]
        statements = [*halves, statements[2]]
    return json.dumps(bucket_policy.document(statements))


def bucket(name: str, text: str) -> Bucket:
    def fact(api: str, value: object = None) -> Fact:
        return Fact(api, value)
    return Bucket(name=name, region=fact("s3:GetBucketLocation", "us-east-1"), encryption=fact("s3:GetBucketEncryption", []),
                  policy=fact("s3:GetBucketPolicy", json.loads(text)), versioning=fact("s3:GetBucketVersioning", {}),
                  replication=fact("s3:GetBucketReplication"), public_access_block=fact("s3:GetPublicAccessBlock"),
                  logging=fact("s3:GetBucketLogging"), lifecycle=fact("s3:GetBucketLifecycleConfiguration"),
                  object_lock=fact("s3:GetObjectLockConfiguration"), tags=fact("s3:GetBucketTagging", {}))


def raw_shape_test(name: str, text: str) -> bool:
    """What a one-statement linter checks: no combining, no reading of conditions beyond their count."""
    wanted = {f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"}
    for statement in json.loads(text)["Statement"]:
        resources = statement.get("Resource")
        resources = set(resources if isinstance(resources, list) else [resources])
        if (statement.get("Effect") == "Deny" and statement.get("Principal") == "*" and statement.get("Action") == "s3:*"
                and wanted <= resources and len(statement.get("Condition", {})) == 1):
            return True
    return False


def best(rounds: int, work) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--buckets", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    policy = load_policy(ROOT / "policy.yaml")
    print(f"{platform.machine()}, Python {platform.python_version()}, {args.buckets} buckets, best of {args.rounds}")
    for split in (False, True):
        texts = {f"bench-{split:d}-{i:05d}": document(f"bench-{split:d}-{i:05d}", split) for i in range(args.buckets)}

        def vigil(texts: dict[str, str] = texts) -> None:
            buckets = {name: bucket(name, text) for name, text in texts.items()}  # json.loads, as the collector does
            ctx = Context(policy=policy, inventory=Inventory(account_id="123456789012", regions=["us-east-1"], buckets=buckets))
            for b in buckets.values():
                for control in CONTROLS:
                    control.check_bucket(ctx, b)

        def raw(texts: dict[str, str] = texts) -> None:
            for name, text in texts.items():
                for _control in CONTROLS:
                    raw_shape_test(name, text)

        verdicts = {c.ID: c.check_bucket(Context(policy=policy, inventory=Inventory(account_id="1", regions=["us-east-1"], buckets={})),
                                         bucket(n, t)).status.value for n, t in list(texts.items())[:1] for c in CONTROLS}
        ours, theirs = best(args.rounds, vigil), best(args.rounds, raw)
        label = "split by action" if split else "stack policy"
        print(f"{label:16} vigil {ours / args.buckets * 1e6:7.0f} us/bucket (4 controls)   raw shape test "
              f"{theirs / args.buckets * 1e6:5.0f} us/bucket   ratio {ours / theirs:5.1f}x   verdicts {verdicts}")


if __name__ == "__main__":
    main()
