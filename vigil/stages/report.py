"""The report stage: render the evidence pack for a results folder, sign it, optionally upload it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.aws import Aws
from vigil.errors import ExitCode
from vigil.evidence import keys, upload
from vigil.evidence.render import refuse_key_inside, write_report
from vigil.evidence.upload import DEFAULT_RETAIN_DAYS
from vigil.policy import load_policy
from vigil.retention.keys import RetentionKeys, load_keys


@dataclass(frozen=True)
class ReportOptions:
    directory: str | Path  # the results folder (holds findings.json)
    policy: str | Path | None = None  # the run's policy, for its categories table
    signing_key: str | None = None  # a key file or kms:<key id>; None: $VIGIL_SIGNING_KEY, else unsigned
    upload: str | None = None  # s3://bucket/prefix of an Object-Lock bucket
    retain_days: int = DEFAULT_RETAIN_DAYS
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None  # of the evidence bucket and the KMS key


@dataclass(frozen=True)
class ReportOutcome:
    options: ReportOptions
    written: list[Path]
    signer: str | None = None  # how it was signed; None: unsigned
    fingerprint: str | None = None
    uploaded: list[str] = field(default_factory=list)  # object keys, when options.upload
    exit_code: int = ExitCode.OK


def subject_hasher(policy_path: str | Path | None, aws: Callable[[], Aws]) -> Callable[[str], str]:
    """The keyed hash the ledger uses for subject ids, its key read on first use (a key that cannot be
    read raises UsageError, and the policy copy withholds the ids instead)."""
    loaded: list[RetentionKeys] = []

    def hash_subject(subject: str) -> str:
        if not loaded:
            loaded.append(load_keys(load_policy(policy_path or "policy.yaml"), aws()))
        return loaded[0].hash(subject)

    return hash_subject


def report(options: ReportOptions) -> ReportOutcome:
    directory = Path(options.directory)
    aws: Aws | None = None

    def client(service: str) -> Any:
        nonlocal aws
        aws = aws or Aws(profile=options.profile, endpoint_url=options.endpoint_url)
        region = options.region or aws.session.region_name or "us-east-1"
        return aws.client(service, region)

    if options.upload:
        upload.check_options(options.upload, options.retain_days)
    refuse_key_inside(directory, options.signing_key)
    signer = keys.load_signer(options.signing_key, kms_client=lambda: client("kms"))
    written = write_report(directory, options.policy, signer, subject_hasher(options.policy, lambda: aws or Aws(
        profile=options.profile, endpoint_url=options.endpoint_url)))
    uploaded = upload.upload_pack(directory, options.upload, client("s3"), retain_days=options.retain_days) if options.upload else []
    return ReportOutcome(options, written, signer.description if signer else None,
                         keys.fingerprint(signer.public_key_raw()) if signer else None, uploaded)
