"""Bucket policy statements, as plain JSON-able dicts (TLS-01, TLS-02, MFA-03).

Each deny is its own statement with exactly one condition, because a second condition in
the same statement narrows the deny (both must hold for it to apply).
"""
from __future__ import annotations

OBJECT_ACCESS = ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]


def _resources(bucket: str) -> list[str]:
    return [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def deny_plain_http(bucket: str) -> dict:
    return {
        "Sid": "DenyPlainHttp",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": _resources(bucket),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def deny_old_tls(bucket: str) -> dict:
    return {
        "Sid": "DenyTlsBelow12",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": _resources(bucket),
        "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
    }


def deny_without_mfa(bucket: str, exempt_role_arns: list[str]) -> dict:
    """Object reads, writes and deletes need MFA; `BoolIfExists` also catches requests without the key."""
    condition: dict = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}
    if exempt_role_arns:
        condition["ArnNotLike"] = {"aws:PrincipalArn": sorted(exempt_role_arns)}
    return {
        "Sid": "DenyObjectAccessWithoutMfa",
        "Effect": "Deny",
        "Principal": "*",
        "Action": OBJECT_ACCESS,
        "Resource": f"arn:aws:s3:::{bucket}/*",
        "Condition": condition,
    }


def allow_log_delivery(bucket: str, account_id: str, service: str, key_prefix: str = "") -> list[dict]:
    """Let S3 server access logging or CloudTrail write into a log bucket, only for this account."""
    statements = [
        {
            "Sid": f"Allow{service.split('.')[0].title()}Write",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "s3:PutObject",
            "Resource": f"arn:aws:s3:::{bucket}/{key_prefix}*",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        }
    ]
    if service == "cloudtrail.amazonaws.com":
        statements.append({
            "Sid": "AllowCloudtrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": service},
            "Action": "s3:GetBucketAcl",
            "Resource": f"arn:aws:s3:::{bucket}",
            "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
        })
    return statements


def document(statements: list[dict]) -> dict:
    return {"Version": "2012-10-17", "Statement": statements}
