"""The least-privilege IAM policy each part of Vigil needs, derived from the code that calls AWS.

One source for `vigil iam-policy check|retain|subject`, the scheduled job's policy
(`vigil.scheduler.iam` -> deploy/iam-policy.json) and the stack's retention role
(infra/components/iam.py). The actions are the API operations the code calls, read from its
source (`vigil.iam_actions`); nothing here lists actions by hand. Resources are scoped by
who calls: collectors judge every resource in scope ("all" buckets, tables, keys); retention
and subject erasure touch only the policy's stores and their replicas; the job's report
writes only to the evidence bucket, its locks only under their prefix, its signer uses only
its key. Actions AWS does not scope (List*, account settings) get "*"; a write or delete
never does (`resources` refuses).
"""
from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from vigil import engines
from vigil.aws import Aws
from vigil.engines import BATCH_OPERATIONS
from vigil.errors import EnvironmentFailure
from vigil.iam_actions import (
    VIA_DYNAMODB_KMS,
    VIA_S3_KMS,
    CallSite,
    actions_for,
    call_sites,
    imported_modules,
    module_path,
)
from vigil.policy import Policy

ALL, STORES, EVIDENCE, LOCKS, SIGNING = "all", "stores", "evidence", "locks", "signing"
INVENTORIES = "inventories"  # the S3 Inventory reports stores plan from (read only)
ARTIFACTS = "artifacts"  # --engine glue|emr-serverless: the slices and results, the job, the EMR execution role
LOCK_PREFIX = "vigil/locks/"  # where the S3 lock objects live (vigil.locks)
BATCH = "batch"  # `retain --executor batch-operations`: its bucket, its jobs and the role they run as
BATCH_PREFIX = "vigil/batch/"  # manifests and completion reports under the batch bucket (retention.batch_jobs.PREFIX)
RUNS_PREFIX = "vigil/runs/"  # where retention's cluster engine writes and removes slices and results (cluster_engine.py)


@dataclass(frozen=True)
class Part:
    """Modules whose calls a command makes, the import closure to follow, and whose resources they touch."""

    entries: tuple[str, ...]
    follow: tuple[str, ...]
    scope: str
    clients: tuple[str, ...] = ()  # services of clients these modules are handed rather than make
    never: tuple[str, ...] = ()  # operations a followed module has that this part's code never reaches
    also: tuple[str, ...] = ()  # actions a call needs because of the parameters it passes (not its operation)
    apart: tuple[str, ...] = ()  # modules imported but whose calls are another part's (made only when it is used)


def package_modules(package: str) -> tuple[str, ...]:
    """Every module of a package, by name (read from its folder, nothing imported)."""
    path = module_path(package)
    return tuple(sorted(f"{package}.{p.stem}" for p in path.parent.glob("*.py"))) if path else ()


BASE = Part(("vigil.aws",), ("vigil.aws",), ALL)
# The S3 collector's calls are the rows of the facts table (vigil/s3_facts.py), which it follows.
COLLECTORS = Part(("vigil.checks.collectors",), ("vigil.checks.collectors", "vigil.s3_facts"), ALL)
# Listing objects (not versions) is only for finding S3 Inventory reports: INVENTORY_REPORTS grants it there.
RET02 = Part(("vigil.retention.verify",), ("vigil.retention",), STORES, never=("s3:ListObjectsV2",))  # the check's RET-02 reads the stores
# The cluster engines' calls (cluster_engine.py) are made only with --engine glue|emr-serverless: CLUSTER grants them.
CLUSTER_MODULES = ("vigil.retention.cluster_engine", "vigil.retention.cluster_job")
RETENTION = Part(("vigil.retention.engine", "vigil.retention.keys"), ("vigil.retention",), STORES, never=("s3:ListObjectsV2",),
                 apart=CLUSTER_MODULES)
# EMR Serverless runs the job as the execution role the driver names, which IAM checks as iam:PassRole.
CLUSTER = Part(CLUSTER_MODULES[:1], CLUSTER_MODULES, ARTIFACTS, also=("iam:PassRole",))
INVENTORY_REPORTS = Part(("vigil.retention.s3_inventory",), ("vigil.retention.s3_inventory",), INVENTORIES)
# Subject erasure acts through the retention executors, whose module also deletes expired recovery
# points; erasure never does (a subject's backups are reported, and age out by the vault's rules).
SUBJECTS = Part(package_modules("vigil.subjects"), ("vigil.subjects", "vigil.retention"), STORES, never=("backup:DeleteRecoveryPoint", "s3:ListObjectsV2"))
# The upload's PutObject sets ObjectLockMode and RetainUntilDate, which IAM checks as s3:PutObjectRetention.
EVIDENCE_UPLOAD = Part(("vigil.evidence.upload",), ("vigil.evidence.upload",), EVIDENCE, clients=("s3",), also=("s3:PutObjectRetention",))
JOB_LOCKS = Part(("vigil.locks",), ("vigil.locks",), LOCKS, clients=("s3",))  # the scheduler's, and retention's per store
KMS_SIGNING = Part(("vigil.evidence.keys",), ("vigil.evidence.keys",), SIGNING)
# Only runs with `--executor batch-operations` reach these modules (the engine is handed them, never imports
# them). CreateJob passes the job its role, which IAM checks as iam:PassRole.
BATCH_JOBS = Part(("vigil.retention.batch_reports",), ("vigil.retention.batch_jobs", "vigil.retention.batch_reports"), BATCH,
                  also=("iam:PassRole",))
EXECUTORS: dict[str, tuple[Part, ...]] = {name: (BATCH_JOBS,) if name == BATCH_OPERATIONS else () for name in engines.EXECUTORS}
# The S3 Batch Operations Lambda (deploy/batch_handler.py): one version per task, on the stores and their
# replicas. It reaches the rewrite and the replication-rule reads, never the DynamoDB writes, recovery
# points, tables' descriptions or report listings of the modules it follows.
BATCH_TASK = Part(("vigil.retention.batch_ops",), ("vigil.retention",), STORES,
                  never=("backup:DeleteRecoveryPoint", "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem",
                         "dynamodb:TransactWriteItems", "dynamodb:DescribeTable", "s3:ListObjectsV2"))
ENGINES: dict[str, tuple[Part, ...]] = {name: (CLUSTER,) if name in engines.CLUSTER_ENGINES else () for name in engines.ENGINES}

COMMANDS: dict[str, tuple[Part, ...]] = {
    "check": (BASE, COLLECTORS, RET02),
    "retain": (BASE, RETENTION, INVENTORY_REPORTS),
    "subject": (BASE, SUBJECTS),
}


@dataclass
class Targets:
    """What the policy's stores are, for scoping, and what else the job writes."""

    regions: list[str]
    account: str  # 12 digits, or "*"
    objects: list[tuple[str, str]]  # (bucket, key prefix): stores and their replicas
    tables: list[str]
    evidence_bucket: str | None = None
    lock_bucket: str | None = None
    signing_key: str | None = None  # a KMS key id, ARN or alias/NAME
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (region, name or ARN): PostgreSQL stores' secrets
    db_users: list[tuple[str, str]] = field(default_factory=list)  # (region, user): PostgreSQL stores reached with IAM auth
    inventories: list[tuple[str, str]] = field(default_factory=list)  # (bucket, key prefix) of the reports stores plan from
    batch_bucket: str | None = None  # --executor batch-operations: manifests and reports ({region}: one per region)
    batch_role: str | None = None  # the role its jobs run as (passed to S3 Batch Operations)

    @property
    def batch_buckets(self) -> list[str]:
        return sorted({self.batch_bucket.replace("{region}", r) for r in self.regions}) if self.batch_bucket else []
    artifacts_bucket: str | None = None  # --engine glue|emr-serverless: the slices and results (CLUSTER)
    glue_job: str | None = None
    emr_application: str | None = None
    emr_role: str | None = None  # an ARN

    @property
    def buckets(self) -> list[str]:
        return sorted({bucket for bucket, _ in self.objects})

    @classmethod
    def of(cls, policy: Policy, regions: Iterable[str], account: str = "*", replicas: Mapping[str, Iterable[str]] | None = None,
           buckets: Iterable[str] = (), **job: Any) -> Targets:
        """The policy's stores, the replicas their replication rules name, and any other buckets given."""
        copies = replicas or {}
        objects = {(s.bucket, s.prefix) for s in policy.s3_stores}
        objects |= {(replica, s.prefix) for s in policy.s3_stores for replica in copies.get(s.bucket, ())}
        objects |= {(bucket, "") for bucket in buckets}
        tables = set(policy.data_tables)  # the subject-request log included
        connections = [s.connection for s in policy.stores if s.kind == "postgres"]
        secrets = sorted({(c.region or policy.regions.primary, c.secret) for c in connections if c.secret})
        users = sorted({(c.region or policy.regions.primary, c.user or "*") for c in connections if c.rds_instance})
        reports = sorted({(s.inventory.bucket, s.inventory.prefix.strip("/")) for s in policy.s3_stores if s.inventory})
        return cls(list(regions), account, sorted(objects), sorted(tables), secrets=secrets, db_users=users,
                   inventories=reports, **job)


def job_parts(t: Targets) -> tuple[Part, ...]:
    """The scheduled job: check, retain and the subject requests, plus its report's upload, locks and signing key."""
    parts = [part for name in ("check", "retain", "subject") for part in COMMANDS[name]]
    parts += [EVIDENCE_UPLOAD] if t.evidence_bucket else []
    parts += [JOB_LOCKS] if t.lock_bucket else []
    parts += [KMS_SIGNING] if t.signing_key else []
    return tuple(dict.fromkeys(parts))


def _needed(parts: Iterable[Part]) -> list[tuple[str, str, str]]:
    """(operation, IAM action, scope) for every call site of the parts, and the actions their parameters add."""
    found: list[tuple[str, str, str]] = []
    for part in parts:
        for site, scope in sites([part]):
            found.extend((site.operation, action, scope) for action in actions_for(site.operation))
        found.extend(("", action, part.scope) for action in part.also)
    return found


def sites(parts: Iterable[Part]) -> list[tuple[CallSite, str]]:
    """Every call site the parts' code declares, with the scope of the part it belongs to."""
    found: list[tuple[CallSite, str]] = []
    for part in parts:
        modules: set[str] = set()
        for entry in part.entries:
            if module_path(entry) is None:  # a moved module must not silently drop its permissions
                raise ValueError(f"{entry}: no such module (vigil.permissions names the code each part runs)")
            modules |= imported_modules(entry, part.follow)
        modules -= set(part.apart)
        for module in sorted(modules):
            found.extend((site, part.scope) for site in call_sites(module, part.clients) if site.operation not in part.never)
    return found


def actions(parts: Iterable[Part]) -> list[str]:
    """Every IAM action the parts' code calls."""
    return sorted({action for _operation, action, _scope in _needed(parts)})


_S3_OBJECT = re.compile(r"^s3:(Get|Put|Delete|Restore|Abort)Object")
_UNSCOPED = {"s3:ListAllMyBuckets", "s3:GetAccountPublicAccessBlock", "dynamodb:ListTables", "kms:ListKeys", "kms:ListAliases"}
_READS = ("Get", "List", "Describe", "Head", "Scan", "Query", "BatchGet", "Lookup", "Search")


def is_object_action(action: str) -> bool:
    return bool(_S3_OBJECT.match(action))


def is_write(action: str) -> bool:
    """Changes or deletes something (or uses a key to): never granted on every resource."""
    return not action.split(":", 1)[1].startswith(_READS)


Scoped = tuple[str, tuple[str, ...], str]  # (statement label, resource ARNs, condition as JSON or "")


def resources(action: str, scope: str, t: Targets) -> Scoped:
    """The statement one IAM action at one scope belongs in."""
    scoped = _resources(action, scope, t)
    if scoped[1] == ("*",) and not scoped[2] and is_write(action):
        raise ValueError(f"{action} ({scope}) would be allowed on every resource: give it a scope in vigil.permissions")
    return scoped


def _resources(action: str, scope: str, t: Targets) -> Scoped:
    service = action.split(":", 1)[0]
    if scope == BATCH:
        return _batch(action, t)
    if scope == ARTIFACTS:
        return _artifacts(action, t)
    if action in _UNSCOPED:
        return "AccountWide", ("*",), ""
    if service == "s3":
        return _s3(action, scope, t)
    if service == "dynamodb":
        names = ["*"] if scope == ALL else t.tables
        return ("AllTables" if scope == ALL else "StoreTables",
                tuple(f"arn:aws:dynamodb:{r}:{t.account}:table/{n}" for r in t.regions for n in names), "")
    if service == "kms" and scope == SIGNING and t.signing_key:
        return _signing_key(t.signing_key.removeprefix("kms:"), t)
    if service == "kms":
        return "Keys", tuple(f"arn:aws:kms:{r}:{t.account}:key/*" for r in t.regions), ""
    if service == "secretsmanager" and scope != ALL:  # only the secrets the policy's stores name; none: not granted
        return "StoreSecrets", tuple(name if name.startswith("arn:") else f"arn:aws:secretsmanager:{r}:{t.account}:secret:{name}-??????"
                                     for r, name in t.secrets), ""
    if action == "backup:DeleteRecoveryPoint":
        # A recovery point's ARN does not name its vault: the narrowest IAM scope is the account's
        # recovery points in the policy's regions (a vault's access policy can narrow it further).
        return "RecoveryPoints", tuple(f"arn:aws:backup:{r}:{t.account}:recovery-point:*" for r in t.regions), ""
    return "AccountWide", ("*",), ""


def _s3(action: str, scope: str, t: Targets) -> Scoped:
    objects = is_object_action(action)
    if scope == ALL:
        return ("AllObjects", ("arn:aws:s3:::*/*",), "") if objects else ("AllBuckets", ("arn:aws:s3:::*",), "")
    if scope == EVIDENCE and t.evidence_bucket:
        return ("EvidenceObjects", (f"arn:aws:s3:::{t.evidence_bucket}/*",), "") if objects else \
            ("EvidenceBucket", (f"arn:aws:s3:::{t.evidence_bucket}",), "")
    if scope == LOCKS and t.lock_bucket:
        return ("JobLocks", (f"arn:aws:s3:::{t.lock_bucket}/{LOCK_PREFIX}*",), "") if objects else \
            ("JobLockBucket", (f"arn:aws:s3:::{t.lock_bucket}",), "")
    if scope == INVENTORIES:
        reports, buckets = inventory_resources(t.inventories)
        return ("InventoryReports", reports, "") if objects else ("InventoryBuckets", buckets, "")
    if objects:
        return "StoreObjects", tuple(sorted({f"arn:aws:s3:::{b}/{p}*" for b, p in t.objects})), ""
    return "StoreBuckets", tuple(f"arn:aws:s3:::{b}" for b in t.buckets), ""


def _batch(action: str, t: Targets) -> Scoped:
    """Batch Operations: jobs that invoke a Lambda only, the one role, the batch bucket's vigil/batch/ only."""
    if action == "s3:CreateJob":  # IAM scopes CreateJob by condition only
        return "BatchCreateJob", ("*",), json.dumps({"StringEquals": {"s3:RequestJobOperation": "LambdaInvoke"}})
    if action == "iam:PassRole":
        return "BatchPassRole", ((t.batch_role,) if t.batch_role else ()), \
            json.dumps({"StringEquals": {"iam:PassedToService": "batchoperations.s3.amazonaws.com"}})
    if action.startswith("s3:") and action.removeprefix("s3:").endswith("Job"):
        return "BatchJobs", tuple(f"arn:aws:s3:{r}:{t.account}:job/*" for r in t.regions), ""
    if is_object_action(action):
        return "BatchObjects", tuple(f"arn:aws:s3:::{b}/{BATCH_PREFIX}*" for b in t.batch_buckets), ""
    return "BatchBuckets", tuple(f"arn:aws:s3:::{b}" for b in t.batch_buckets), ""


def inventory_resources(inventories: Iterable[tuple[str, str]]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(report objects, buckets) of S3 Inventory destinations given as (bucket, key prefix)."""
    pairs = sorted(set(inventories))
    return (tuple(f"arn:aws:s3:::{b}/{p + '/' if p else ''}*" for b, p in pairs),
            tuple(f"arn:aws:s3:::{b}" for b in sorted({b for b, _ in pairs})))


def _artifacts(action: str, t: Targets) -> Scoped:
    """The cluster engine's grants: none for a job, application or role the flags did not name."""
    service = action.split(":", 1)[0]
    bucket = t.artifacts_bucket
    if service == "s3":
        return ("ArtifactRuns", (f"arn:aws:s3:::{bucket}/{RUNS_PREFIX}*",) if bucket else (), "") if is_object_action(action) \
            else ("ArtifactsBucket", (f"arn:aws:s3:::{bucket}",) if bucket else (), "")
    if service == "glue":
        return "GlueJob", tuple(f"arn:aws:glue:{r}:{t.account}:job/{t.glue_job}" for r in t.regions if t.glue_job), ""
    if service == "emr-serverless":
        app = t.emr_application
        return "EmrServerlessJobRuns", tuple(f"arn:aws:emr-serverless:{r}:{t.account}:/applications/{app}{runs}"
                                             for r in t.regions if app for runs in ("", "/jobruns/*")), ""
    if action == "iam:PassRole":
        return ("EmrExecutionRole", (t.emr_role,) if t.emr_role else (),
                json.dumps({"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}}))
    raise ValueError(f"{action}: the cluster engine's calls have no scope for it (vigil.permissions._artifacts)")


def _signing_key(key: str, t: Targets) -> Scoped:
    """IAM names a KMS key by ARN; an alias only through the kms:RequestAlias condition."""
    if key.startswith("arn:"):
        return "SigningKey", (key,), ""
    if key.startswith("alias/"):
        return "SigningKey", ("*",), json.dumps({"StringEquals": {"kms:RequestAlias": key}})
    return "SigningKey", tuple(f"arn:aws:kms:{r}:{t.account}:key/{key}" for r in t.regions), ""


def build(parts: Iterable[Part], t: Targets) -> dict[str, Any]:
    """The IAM policy document for the parts' code."""
    via_s3: set[str] = set()
    via_dynamodb: set[str] = set()
    found: dict[str, set[str]] = {}  # action -> every scope it is called at
    for operation, action, scope in _needed(parts):
        found.setdefault(action, set()).add(scope)
        via_s3.update(VIA_S3_KMS.get(operation, ()))
        via_dynamodb.update(VIA_DYNAMODB_KMS.get(operation, ()) if t.tables else ())
    groups: dict[Scoped, set[str]] = {}
    for action, scopes in found.items():
        for scope in ({ALL} if ALL in scopes else scopes):  # allowed everywhere covers every narrower scope
            groups.setdefault(resources(action, scope, t), set()).add(action)
    statements: list[dict[str, Any]] = []
    for (label, arns, condition), names in sorted(groups.items()):
        if not arns:  # the policy has no resource of this kind: nothing to grant
            continue
        statement = {"Sid": label, "Effect": "Allow", "Action": sorted(names), "Resource": list(arns) if arns != ("*",) else "*"}
        statements.append({**statement, "Condition": json.loads(condition)} if condition else statement)
    if t.db_users and any(STORES in scopes for scopes in found.values()):
        # IAM database authentication signs a token locally (no API call to derive it from): one grant per store user.
        statements.append({"Sid": "StoreDatabaseUsers", "Effect": "Allow", "Action": ["rds-db:connect"],
                           "Resource": [f"arn:aws:rds-db:{r}:{t.account}:dbuser:*/{user}" for r, user in t.db_users]})
    if via_s3:  # objects under a customer key: S3 calls KMS for the caller, and only S3 may use this grant
        statements.append({"Sid": "StoreKeysViaS3", "Effect": "Allow", "Action": sorted(via_s3),
                           "Resource": [f"arn:aws:kms:{r}:{t.account}:key/*" for r in t.regions],
                           "Condition": {"StringEquals": {"kms:ViaService": [f"s3.{r}.amazonaws.com" for r in t.regions]}}})
    if via_dynamodb:  # tables under a customer key: the same, through DynamoDB
        statements.append({"Sid": "StoreKeysViaDynamoDB", "Effect": "Allow", "Action": sorted(via_dynamodb),
                           "Resource": [f"arn:aws:kms:{r}:{t.account}:key/*" for r in t.regions],
                           "Condition": {"StringEquals": {"kms:ViaService": [f"dynamodb.{r}.amazonaws.com" for r in t.regions]}}})
    return {"Version": "2012-10-17", "Statement": _merge_sids(statements)}


def _merge_sids(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Statement ids are unique within a policy: a label used twice gets a number."""
    seen: dict[str, int] = {}
    for statement in statements:
        count = seen[statement["Sid"]] = seen.get(statement["Sid"], 0) + 1
        if count > 1:
            statement["Sid"] = f"{statement['Sid']}{count}"
    return statements


@dataclass
class RoleActions:
    """The retention role's actions by resource kind (the stack builds its own statements from them)."""

    bucket: list[str] = field(default_factory=list)
    object: list[str] = field(default_factory=list)
    table: list[str] = field(default_factory=list)
    recovery_point: list[str] = field(default_factory=list)
    backup_reads: list[str] = field(default_factory=list)
    kms: list[str] = field(default_factory=list)
    account_reads: list[str] = field(default_factory=list)  # reads AWS does not scope narrower (rds:Describe*)
    secrets: list[str] = field(default_factory=list)  # scoped to the secrets a policy's PostgreSQL stores name
    report_bucket: list[str] = field(default_factory=list)  # S3 Inventory destinations (inventory_resources)
    report_object: list[str] = field(default_factory=list)


def retention_role_actions() -> RoleActions:
    """What `vigil retain` calls, sorted by the kind of resource each action is on."""
    out = RoleActions()
    reports = [p for p in COMMANDS["retain"] if p.scope == INVENTORIES]
    for action in actions(reports):
        (out.report_object if is_object_action(action) else out.report_bucket).append(action)
    for action in actions(p for p in COMMANDS["retain"] if p.scope != INVENTORIES):
        service = action.split(":", 1)[0]
        if service == "s3":
            (out.object if is_object_action(action) else out.bucket).append(action)
        elif service == "dynamodb":
            out.table.append(action)
        elif action == "backup:DeleteRecoveryPoint":
            out.recovery_point.append(action)
        elif service == "backup":
            out.backup_reads.append(action)
        elif service == "kms":
            out.kms.append(action)
        elif service == "secretsmanager":
            out.secrets.append(action)
        elif not is_write(action):
            out.account_reads.append(action)
        else:
            raise ValueError(f"{action}: the retention role has no scope for it (vigil.permissions.retention_role_actions)")
    return out


def destinations(rules: Iterable[Mapping[str, Any]]) -> list[str]:
    """The buckets replication rules copy to, from the API's shape (Destination.Bucket) or Pulumi's (destination.bucket)."""
    out = set()
    for rule in rules:
        target = rule.get("Destination") or rule.get("destination") or {}
        arn = target.get("Bucket") or target.get("bucket")
        if arn:
            out.add(str(arn).removeprefix("arn:aws:s3:::"))
    return sorted(out)


def discover_replicas(aws: Aws, policy: Policy) -> dict[str, list[str]]:
    """Store bucket -> the replica buckets its replication configuration names (read live).

    A bucket without replication (or not created yet) has none; anything else (endpoint
    unreachable, no credentials, access denied) would leave replicas out of the policy, so it
    ends the command with exit 3 instead of printing an incomplete policy.
    """
    aws.account_id(policy.regions.primary)  # pre-flight: a broken environment fails fast, not after retries
    out: dict[str, list[str]] = {}
    s3 = aws.client("s3", policy.regions.primary)
    for bucket in sorted(policy.data_buckets):
        try:
            rules = s3.get_bucket_replication(Bucket=bucket)["ReplicationConfiguration"].get("Rules", [])
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code not in ("ReplicationConfigurationNotFoundError", "NoSuchBucket"):
                raise EnvironmentFailure(f"cannot read the replication rules of {bucket}: {exc}") from None
            if code == "NoSuchBucket":
                print(f"vigil: {bucket} does not exist yet, so it has no replicas", file=sys.stderr)
            continue
        except botocore.exceptions.BotoCoreError as exc:
            raise EnvironmentFailure(f"cannot read the replication rules of {bucket}: {exc}") from None
        out[bucket] = destinations(rules)
    return out
