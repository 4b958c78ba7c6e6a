"""Typed models of the data-handling policy file (schema version 1).

Field-level rules live on the models; rules that span several parts of the file live in
`rules.py` so each error can name the exact key it is about.
"""
from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .duration import Duration

DurationField = Annotated[Duration, BeforeValidator(Duration.parse)]

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d$")
_SCHEDULE = re.compile(
    r"^every( (?P<n>[1-9]\d*))? (?P<unit>minutes?|hours?|days?)$"
    r"|^every (?P<when>day|monday|tuesday|wednesday|thursday|friday|saturday|sunday) at (?P<hh>[01]\d|2[0-3]):(?P<mm>[0-5]\d)$"
)
TRANSFORMS = ("generalize_ip", "drop", "keep", "pseudonymize", "redact", "truncate_time", "mask")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


def _region(value: str) -> str:
    if not isinstance(value, str) or not _REGION.match(value):
        raise ValueError(f"{value!r} is not an AWS region name (e.g. us-east-1)")
    return value


Region = Annotated[str, BeforeValidator(_region)]


def _account_id(value: Any) -> str:
    """12 digits. YAML reads an unquoted id as a number and drops leading zeros, so only a 12-digit number passes unquoted."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not re.fullmatch(r"[0-9]{12}", text):
        raise ValueError(f"{value!r} is not an AWS account id (12 digits, quoted: '012345678901')")
    return text


AccountId = Annotated[str, BeforeValidator(_account_id)]


class Transform(Strict):
    """One anonymization transform, written `name` or `name:arg` in the file."""

    name: str
    arg: str | int | None = None

    @classmethod
    def parse(cls, text: Any) -> Transform:
        if isinstance(text, Transform):
            return text
        if not isinstance(text, str):
            raise ValueError(f"{text!r} is not a transform (one of {', '.join(TRANSFORMS)})")
        name, _, arg = text.partition(":")
        if name not in TRANSFORMS:
            raise ValueError(f"unknown transform '{text}' (known: {', '.join(TRANSFORMS)})")
        if name == "truncate_time":
            if arg not in ("day", "hour"):
                raise ValueError(f"'{text}': truncate_time takes ':day' or ':hour'")
            return cls(name=name, arg=arg)
        if name == "mask":
            if not arg.isdigit():
                raise ValueError(f"'{text}': mask takes the number of characters to keep, e.g. 'mask:4'")
            return cls(name=name, arg=int(arg))
        if arg:
            raise ValueError(f"'{text}': {name} takes no argument")
        return cls(name=name)

    def __str__(self) -> str:
        return self.name if self.arg is None else f"{self.name}:{self.arg}"


TransformField = Annotated[Transform, BeforeValidator(Transform.parse)]

TIME_UNITS = ("hour", "day", "week", "month", "year")  # finest first


def _rung(text: Any) -> Transform:
    """One rung of a generalization ladder: `truncate_time:hour|day|week|month|year`,
    `generalize_ip:N` (IPv4 /N, IPv6 /2N; N from 1 to 24) or `redact` (one class for all)."""
    if isinstance(text, Transform):
        return text
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a generalization (truncate_time:UNIT, generalize_ip:N or redact)")
    name, _, arg = text.partition(":")
    if name == "truncate_time" and arg in TIME_UNITS:
        return Transform(name=name, arg=arg)
    if name == "generalize_ip" and arg.isdigit() and 1 <= int(arg) <= 24:
        return Transform(name=name, arg=int(arg))
    if name == "redact" and not arg:
        return Transform(name=name)
    raise ValueError(f"'{text}' is not a generalization: truncate_time:{'|'.join(TIME_UNITS)}, "
                     "generalize_ip:N (N from 1 to 24: IPv4 /N, IPv6 /2N) or redact")


RungField = Annotated[Transform, BeforeValidator(_rung)]


class Regions(Strict):
    primary: Region
    backup: Region
    allowed: list[Region] = Field(min_length=1)


class Access(Strict):
    service_roles: list[str] = []
    human_roles: list[str] = []


class Verify(Strict):
    quasi_identifiers: list[str] = Field(min_length=1)
    k: int = Field(ge=2)
    # share of a batch that may be suppressed to reach k before the batch is refused
    max_suppression: float = Field(default=0.05, ge=0, le=1)
    # per quasi-identifier, coarser generalizations (finest first) tried before suppressing or refusing
    ladder: dict[str, list[RungField]] = Field(default_factory=dict)
    # what k is judged over: each batch (object, item batch, row batch) on its own, or an S3 store's
    # whole anonymized dataset in one run (retention/dataset_k.py)
    scope: Literal["object", "dataset"] = "object"


class Category(Strict):
    description: str | None = None
    retain: DurationField
    after: Literal["account_closed"] | None = None
    action: Literal["delete", "anonymize"] | None = None
    anonymize: dict[str, TransformField] | None = None
    verify: Verify | None = None
    keep_at_least: DurationField | None = None
    basis: str | None = None

    @property
    def timed(self) -> bool:
        """Its clock starts when the data is written and runs out: an age alone says when it is due."""
        return not self.retain.forever and self.after is None


class KeySource(Strict):
    source: Literal["env", "file", "kms"]
    name: str | None = None  # env: the variable holding base64
    path: str | None = None  # file: raw key bytes or base64
    ciphertext: str | None = None  # kms: base64 of an encrypted data key
    region: Region | None = None  # kms: where the key lives (default: primary region)


class Keys(Strict):
    pseudonymize: KeySource | None = None
    evidence: KeySource | None = None


def _schedule(value: Any) -> str:
    if not isinstance(value, str) or not _SCHEDULE.match(value.strip().lower()):
        raise ValueError(
            f"{value!r} is not a schedule phrase ('every N minutes|hours|days', "
            "'every day at HH:MM', 'every <weekday> at HH:MM')"
        )
    return value.strip().lower()


SchedulePhrase = Annotated[str, BeforeValidator(_schedule)]


class Schedule(Strict):
    check: SchedulePhrase | None = None
    retain: SchedulePhrase | None = None
    report: SchedulePhrase | None = None


class Subjects(Strict):
    kind: Literal["dynamodb"]
    table: str
    key: str
    closed_at: str


class Requests(Strict):
    """Subject-rights requests (access, erasure): where they are logged and how long answering may take."""

    kind: Literal["dynamodb"] = "dynamodb"
    table: str = Field(default="vigil-requests", pattern=r"^[a-zA-Z0-9_.-]{3,255}$")
    deadline: DurationField = Duration.parse("P30D")


class OwnedStore(Strict):
    """A store lives in one AWS account: `account:` names it; without it, it is in every account a run reaches."""

    account: AccountId | None = None


class InventorySource(Strict):
    """An S3 Inventory report to plan from instead of listing the bucket (AWS's destination layout:
    `<prefix>/<source bucket>/<config_id>/<YYYY-MM-DDTHH-MMZ>/manifest.json`)."""

    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = ""
    config_id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")


class S3Store(OwnedStore):
    name: str
    kind: Literal["s3"]
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    prefix: str = ""
    category: str
    layout: Literal["object", "jsonl", "csv"] = "object"
    subject_from_key: str | None = None
    timestamp_field: str | None = None
    subject_field: str | None = None
    inventory: InventorySource | None = None  # plan from this report, not by listing (retention/s3_inventory.py)
    executor: Literal["local", "batch-operations"] | None = None  # S3 Batch Operations jobs apply it (retention/batch_jobs.py)

    @field_validator("subject_from_key")
    @classmethod
    def _one_subject_placeholder(cls, value: str | None) -> str | None:
        if value is not None and value.count("{subject}") != 1:
            raise ValueError(f"'{value}' must contain '{{subject}}' exactly once")
        if value is not None and "***" in value:
            raise ValueError(f"'{value}': use '*' (within one path segment) or '**' (across segments)")
        return value

    def key_pattern(self, subject: str | None = None) -> re.Pattern[str] | None:
        """`subject_from_key` as a regular expression over whole keys: `{subject}` captures the id (or
        matches `subject` exactly when given), `*` any text within one path segment, `**` any text."""
        if self.subject_from_key is None:
            return None
        parts = {"{subject}": "(?P<subject>.+?)" if subject is None else f"(?P<subject>{re.escape(subject)})",
                 "**": ".*", "*": "[^/]*"}
        pieces = re.split(r"(\{subject\}|\*\*|\*)", self.subject_from_key)
        return re.compile("".join(parts.get(p, re.escape(p)) for p in pieces), re.DOTALL)

    def key_prefix(self, subject: str) -> str | None:
        """The literal start of the subject's keys (what to list), up to the first wildcard."""
        if self.subject_from_key is None:
            return None
        return re.split(r"\*", self.subject_from_key.replace("{subject}", subject), maxsplit=1)[0]


class DynamoDBStore(OwnedStore):
    name: str
    kind: Literal["dynamodb"]
    table: str = Field(pattern=r"^[a-zA-Z0-9_.-]{3,255}$")
    category: str
    timestamp_attribute: str | None = None
    subject_attribute: str | None = None


class RDSStore(OwnedStore):
    name: str
    kind: Literal["rds"]
    instance: str | None = None
    cluster: str | None = None
    category: str


_IDENT = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
Column = Annotated[str, Field(pattern=rf"^{_IDENT}$")]


class PostgresConnection(Strict):
    """Exactly one of: an RDS instance with IAM auth (a fresh token per connection, TLS verify-full
    against the RDS CA bundle), a Secrets Manager secret, or a libpq string in an environment variable."""

    rds_instance: str | None = Field(default=None, pattern=r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$")
    database: str | None = None
    user: str | None = None
    secret: str | None = Field(default=None, min_length=1)
    dsn_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    region: Region | None = None  # rds_instance / secret name: where it lives (default: the primary region)
    ca_bundle: str | None = None  # the RDS CA bundle (PEM); default $VIGIL_RDS_CA_BUNDLE or the usual places

    @model_validator(mode="after")
    def _one_way(self) -> PostgresConnection:
        ways = [w for w in ("rds_instance", "secret", "dsn_env") if getattr(self, w) is not None]
        if len(ways) != 1:
            raise ValueError("name exactly one of 'rds_instance' (with 'database' and 'user'), 'secret' or 'dsn_env'")
        if ways == ["rds_instance"] and (self.database is None or self.user is None):
            raise ValueError("'rds_instance' needs 'database' and 'user' (the IAM-enabled database user)")
        if ways != ["rds_instance"] and (self.database or self.user):
            raise ValueError("'database' and 'user' go with 'rds_instance' (a secret or DSN names its own)")
        return self


class PostgresStore(OwnedStore):
    """A table in a PostgreSQL database (RDS, Aurora or self-run): one row per record."""

    name: str
    kind: Literal["postgres"]
    connection: PostgresConnection
    table: str = Field(pattern=rf"^({_IDENT}\.)?{_IDENT}$")  # schema.table (default schema: public)
    primary_key: list[Column] = Field(min_length=1)
    timestamp_column: Column | None = None
    subject_column: Column | None = None
    category: str

    @property
    def schema_table(self) -> tuple[str, str]:
        schema, _, table = self.table.rpartition(".")
        return schema or "public", table


Store = Annotated[S3Store | DynamoDBStore | RDSStore | PostgresStore, Field(discriminator="kind")]


class Hold(Strict):
    """A legal hold: data of these subjects / under these key prefixes is never touched."""

    reason: str = Field(min_length=1)
    subjects: list[str] = []
    prefixes: list[str] = []
    stores: list[str] = []  # empty: every store
    until: date | None = None


class Waiver(Strict):
    """An accepted risk: findings of `control` on `resource` (an ARN or a glob) do not fail the run."""

    control: str = Field(min_length=1)
    resource: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    approval: str = Field(min_length=1)  # e.g. a ticket or change-request reference
    expires: date  # required; at most one year ahead (rules.py), inclusive
    account: AccountId | None = None  # only findings in this account; None: any account


class Policy(Strict):
    version: Literal[1]
    organization: str
    regions: Regions
    grace: DurationField = Duration(text="P0D")
    access: Access = Access()
    categories: dict[str, Category] = Field(min_length=1)
    keys: Keys = Keys()
    schedule: Schedule = Schedule()
    subjects: Subjects | None = None
    requests: Requests | None = None
    stores: list[Store] = Field(min_length=1)
    holds: list[Hold] = []
    waivers: list[Waiver] = []

    # Filled by the loader: where the policy came from and its digest (evidence quotes both).
    source_path: str = Field(default="", exclude=True)
    sha256: str = Field(default="", exclude=True)

    def for_account(self, account_id: str) -> Policy:
        """The policy as one account sees it: its own stores and those naming no account."""
        stores = [s for s in self.stores if s.account in (None, account_id)]
        return self if len(stores) == len(self.stores) else self.model_copy(update={"stores": stores})

    def category_of(self, store: S3Store | DynamoDBStore | RDSStore | PostgresStore) -> Category:
        return self.categories[store.category]

    @property
    def s3_stores(self) -> list[S3Store]:
        return [s for s in self.stores if isinstance(s, S3Store)]

    @property
    def dynamodb_stores(self) -> list[DynamoDBStore]:
        return [s for s in self.stores if isinstance(s, DynamoDBStore)]

    @property
    def rds_stores(self) -> list[RDSStore]:
        return [s for s in self.stores if isinstance(s, RDSStore)]

    @property
    def postgres_stores(self) -> list[PostgresStore]:
        return [s for s in self.stores if isinstance(s, PostgresStore)]

    @property
    def data_buckets(self) -> set[str]:
        return {s.bucket for s in self.s3_stores}

    @property
    def data_tables(self) -> set[str]:
        """Every table holding personal data: the stores', the subjects table, the subject-request log."""
        tables = {s.table for s in self.dynamodb_stores}
        if self.subjects is not None:
            tables.add(self.subjects.table)
        if self.requests is not None:
            tables.add(self.requests.table)
        return tables

    @property
    def regions_in_scope(self) -> list[str]:
        ordered = [self.regions.primary, self.regions.backup, *self.regions.allowed]
        return list(dict.fromkeys(ordered))

    # --- retention rules, in whole days (a year is 365, a month 30: Duration.approx_days) ---
    # The stack's lifecycle rules (infra/lifecycle.py), the controls that judge them (RET-01,
    # RET-03, RET-04) and the tests' builders all read these, so they cannot drift apart.

    def retention_limit_days(self, store: S3Store | DynamoDBStore | RDSStore) -> int | None:
        """retain + grace for a timed category; None when kept forever or its clock starts at an event."""
        category = self.category_of(store)
        return category.retain.approx_days() + self.grace.approx_days() if category.timed else None

    def expiry_days(self, store: S3Store) -> int | None:
        """Days after which S3 lifecycle itself expires the store's current objects, or None.

        Only whole-object stores whose action is delete and whose clock starts at creation are
        expired by S3; records inside objects, anonymization and `after:` clocks (account
        closed) are the retention job's work.
        """
        category = self.category_of(store)
        if not category.timed or category.action != "delete" or store.layout != "object":
            return None
        return category.retain.approx_days()

    def keep_at_least_days(self, stores: list[S3Store] | list[DynamoDBStore] | list[RDSStore]) -> int:
        """The longest `keep_at_least` among the stores' categories (0: none must be kept)."""
        lows = [self.category_of(s).keep_at_least for s in stores]
        return max((low.approx_days() for low in lows if low is not None), default=0)

    def longest_retention_days(self, categories: list[str] | set[str]) -> int | None:
        """The longest retention among `categories` (None if any is kept forever)."""
        retains = [self.categories[name].retain for name in categories]
        if any(retain.forever for retain in retains):
            return None
        return max((retain.approx_days() for retain in retains), default=0)
