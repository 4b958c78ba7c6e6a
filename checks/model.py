"""Plain, typed records of what was observed, and the findings judged from them.

Collectors (boto3 at run time, Pulumi resource inputs at deploy time) fill these records;
evaluators read them and nothing else. Values keep the shape of the AWS API answer
(`ServerSideEncryptionConfiguration.Rules`, `Policy` as parsed JSON, ...) so an auditor can
match the evidence to the API documentation, and both collectors can produce it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any, Generic, TypeVar

from vigil.s3_facts import S3_FACTS

T = TypeVar("T")


@dataclass(frozen=True)
class Fact(Generic[T]):
    """One fact read from one API call: its value, or why it could not be read."""

    api: str
    value: T | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    NOT_APPLICABLE = "not_applicable"


@dataclass(frozen=True)
class Evidence:
    api: str | list[str]
    observed: Any


@dataclass(frozen=True)
class Finding:
    control: str
    resource: str
    region: str
    status: Status
    reason: str
    evidence: Evidence
    account: str = ""  # the AWS account the resource is in (set by the runner for every finding)

    def to_json(self) -> dict[str, Any]:
        return {
            **({"account": self.account} if self.account else {}),
            "control": self.control,
            "resource": self.resource,
            "region": self.region,
            "status": self.status.value,
            "reason": self.reason,
            "evidence": {"api": self.evidence.api, "observed": self.evidence.observed},
        }


# --- S3 -------------------------------------------------------------------------------


def not_read(fact: str) -> Fact:
    """An S3 fact this run did not ask for: no control in scope reads it for this bucket. An
    evaluator that reads it anyway gets an error, never a silent "not configured"."""
    api = S3_FACTS[fact].api
    return Fact(api, error=f"{api} was not read in this run (no control in scope reads it for this bucket)")


def _unread(fact: str) -> Any:
    return field(default_factory=partial(not_read, fact))


@dataclass
class Bucket:
    """One bucket; each fact is a row of vigil/s3_facts.py (the region comes with the listing)."""

    name: str
    region: Fact[str]
    encryption: Fact[list[dict]] = _unread("encryption")  # ServerSideEncryptionConfiguration.Rules; [] when none
    policy: Fact[dict] = _unread("policy")  # the policy document; None when the bucket has no policy
    versioning: Fact[dict] = _unread("versioning")  # {"Status": "Enabled"|"Suspended", "MFADelete": ...}; {} when never enabled
    replication: Fact[dict] = _unread("replication")  # ReplicationConfiguration; None when none
    public_access_block: Fact[dict] = _unread("public_access_block")  # PublicAccessBlockConfiguration; None when none
    logging: Fact[dict] = _unread("logging")  # LoggingEnabled; None when off
    lifecycle: Fact[list[dict]] = _unread("lifecycle")  # lifecycle Rules; None when none
    object_lock: Fact[dict] = _unread("object_lock")  # ObjectLockConfiguration; None when none
    ownership: Fact[dict] = _unread("ownership")  # OwnershipControls {"Rules": [{"ObjectOwnership": ...}]}; None when none
    tags: Fact[dict[str, str]] = _unread("tags")

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.name}"

    @property
    def region_name(self) -> str:
        return self.region.value or ""


@dataclass(frozen=True)
class BucketFacts:
    """Which S3 facts (rows of vigil/s3_facts.py) are read, by class of bucket. Each control
    declares what it reads (`@evaluator(ID, reads=...)`); a run reads the union for its controls."""

    every: frozenset[str] = frozenset()  # every bucket of the account: data stores, replicas, others
    stores: frozenset[str] = frozenset()  # the policy's data-store buckets
    replicas: frozenset[str] = frozenset()  # the buckets data stores replicate into

    def __post_init__(self) -> None:
        unknown = (self.every | self.stores | self.replicas) - set(S3_FACTS)
        if unknown:
            raise ValueError(f"unknown S3 facts {sorted(unknown)} (known: {', '.join(S3_FACTS)})")

    @classmethod
    def of(cls, every: tuple[str, ...] = (), stores: tuple[str, ...] = (), replicas: tuple[str, ...] = ()) -> BucketFacts:
        return cls(frozenset(every), frozenset(stores), frozenset(replicas))

    @classmethod
    def all(cls) -> BucketFacts:
        return cls(frozenset(S3_FACTS))

    def __or__(self, other: BucketFacts) -> BucketFacts:
        return BucketFacts(self.every | other.every, self.stores | other.stores, self.replicas | other.replicas)

    def for_store(self) -> frozenset[str]:
        # Replicas are found through the stores' replication rules, so reading them needs those.
        return self.every | self.stores | (frozenset({"replication"}) if self.replicas else frozenset())

    def for_replica(self) -> frozenset[str]:
        return self.every | self.replicas


# --- KMS ------------------------------------------------------------------------------


@dataclass
class KmsKey:
    key_id: str
    arn: str
    region: str
    metadata: dict  # DescribeKey KeyMetadata
    rotation: Fact[bool]  # GetKeyRotationStatus KeyRotationEnabled (None: not asked, e.g. AWS-managed)
    aliases: list[str] = field(default_factory=list)

    @property
    def customer_managed(self) -> bool:
        # moto reports alias/aws/* keys as CUSTOMER, so the alias is checked too.
        aws_alias = any(alias.startswith("alias/aws/") for alias in self.aliases)
        return self.metadata.get("KeyManager") == "CUSTOMER" and not aws_alias


# --- DynamoDB, RDS ---------------------------------------------------------------------


@dataclass
class Table:
    name: str
    arn: str
    region: str
    description: Fact[dict]  # DescribeTable Table
    continuous_backups: Fact[dict]  # DescribeContinuousBackups ContinuousBackupsDescription
    tags: Fact[dict[str, str]]


@dataclass
class DbInstance:
    identifier: str
    arn: str
    region: str
    description: dict  # DescribeDBInstances entry
    parameters: Fact[dict[str, str]]  # name -> value of its DB parameter group


@dataclass
class DbCluster:
    identifier: str
    arn: str
    region: str
    description: dict  # DescribeDBClusters entry
    parameters: Fact[dict[str, str]]  # name -> value of its cluster parameter group


# --- IAM, account, regions ------------------------------------------------------------


@dataclass
class IamUser:
    name: str
    arn: str
    login_profile: Fact[bool]  # has a console password
    mfa_devices: Fact[list[dict]]


@dataclass
class IamRole:
    name: str
    arn: str
    trust_policy: Fact[dict]  # None when the role does not exist


@dataclass
class Trail:
    name: str
    arn: str
    home_region: str
    description: dict  # DescribeTrails entry
    status: Fact[dict]  # GetTrailStatus
    event_selectors: Fact[dict]  # GetEventSelectors (EventSelectors / AdvancedEventSelectors)


# --- AWS Backup -----------------------------------------------------------------------


@dataclass
class BackupVault:
    name: str
    arn: str
    region: str
    description: dict  # ListBackupVaults entry (EncryptionKeyArn, ...)
    recovery_points: Fact[list[dict]]  # ListRecoveryPointsByBackupVault


@dataclass
class BackupPlan:
    plan_id: str
    arn: str
    region: str
    plan: Fact[dict]  # GetBackupPlan BackupPlan (Rules with ScheduleExpression, Lifecycle, CopyActions)
    selections: Fact[list[dict]]  # GetBackupSelection BackupSelection, one per selection


# --- Retention state (filled by the retention inventory, judged by RET-02) ------------


@dataclass
class StoreRetention:
    store: str
    resource: str  # ARN of the bucket/table (a replica's own ARN for its copy)
    region: str
    scanned: int = 0  # object versions / records / items looked at
    expired: int = 0  # past retention + grace and not held
    held: int = 0
    oldest_expired: str | None = None  # ISO timestamp of the oldest expired item
    samples: list[str] = field(default_factory=list)  # keyed hashes of a few expired items
    error: str | None = None
    api: str | list[str] = "s3:ListObjectVersions"


# --- Everything observed in one run ---------------------------------------------------


@dataclass
class Inventory:
    account_id: str
    regions: list[str]
    buckets: dict[str, Bucket] = field(default_factory=dict)
    account_summary: Fact[dict] = field(default_factory=lambda: Fact("iam:GetAccountSummary"))
    account_public_access_block: Fact[dict] = field(default_factory=lambda: Fact("s3control:GetPublicAccessBlock"))
    kms_keys: list[KmsKey] = field(default_factory=list)
    users: list[IamUser] = field(default_factory=list)
    roles: dict[str, IamRole] = field(default_factory=dict)  # the policy's roles, by name
    tables: dict[str, Table] = field(default_factory=dict)  # by ARN
    db_instances: list[DbInstance] = field(default_factory=list)
    db_clusters: list[DbCluster] = field(default_factory=list)
    ebs_encryption_by_default: dict[str, Fact[bool]] = field(default_factory=dict)  # by region
    trails: list[Trail] = field(default_factory=list)
    vaults: dict[str, BackupVault] = field(default_factory=dict)  # by ARN
    plans: list[BackupPlan] = field(default_factory=list)
    retention: list[StoreRetention] = field(default_factory=list)
    # Listings that failed: "<service>:<region>" (or "<service>" for global ones) -> the Fact with the error.
    listing_errors: dict[str, Fact] = field(default_factory=dict)

    def bucket_by_arn(self, arn: str) -> Bucket | None:
        return self.buckets.get(arn.removeprefix("arn:aws:s3:::"))

    def tables_named(self, name: str) -> list[Table]:
        return [table for table in self.tables.values() if table.name == name]
