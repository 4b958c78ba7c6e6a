"""Three deliberate mistakes, made after the deploy the way drift happens in real accounts."""
from __future__ import annotations

import json
from dataclasses import dataclass

from vigil.aws import Aws
from vigil.policy import Policy

INTERN = "demo-intern"


@dataclass(frozen=True)
class Breakage:
    control: str
    resource: str  # the ARN the finding will name
    what: str


def break_things(aws: Aws, policy: Policy, account_id: str) -> list[Breakage]:
    primary = policy.regions.primary
    done: list[Breakage] = []

    # 1. Someone "simplifies" a bucket policy and drops the TLS deny (TLS-01).
    s3_stores = policy.s3_stores
    bucket = s3_stores[min(3, len(s3_stores) - 1)].bucket
    s3 = aws.client("s3", primary)
    document = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    document["Statement"] = [s for s in document["Statement"] if "aws:SecureTransport" not in json.dumps(s.get("Condition", {}))]
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    done.append(Breakage("TLS-01", f"arn:aws:s3:::{bucket}", f"bucket {bucket}: the Deny on aws:SecureTransport=false was removed"))

    # 2. Point-in-time recovery switched off on a table to save money (BAK-05).
    subjects_table = policy.subjects.table if policy.subjects else None
    tables = [s.table for s in policy.dynamodb_stores if s.table != subjects_table] or [t for t in (subjects_table,) if t]
    table = tables[0]
    dynamodb = aws.client("dynamodb", primary)
    dynamodb.update_continuous_backups(TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False})
    done.append(Breakage("BAK-05", f"arn:aws:dynamodb:{primary}:{account_id}:table/{table}", f"table {table}: point-in-time recovery turned off"))

    # 3. A console user without MFA (MFA-02).
    iam = aws.client("iam", primary)
    user = iam.create_user(UserName=INTERN)["User"]
    iam.create_login_profile(UserName=INTERN, Password="Summer-2026-password!", PasswordResetRequired=False)
    done.append(Breakage("MFA-02", user["Arn"], f"IAM user {INTERN}: console password, no MFA device"))
    return done
