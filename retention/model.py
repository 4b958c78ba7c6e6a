"""What the inventory yields, one record per object version, object, location, item and table:
plain data shared by the inventory (which fills it), the planners and apply (which read it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .records import Parsed


@dataclass(slots=True)  # one per listed version: a page of 1,000 is held at a time per listing
class Version:
    key: str
    version_id: str
    is_latest: bool
    delete_marker: bool
    last_modified: datetime
    size: int = 0
    lock_mode: str | None = None
    lock_until: datetime | None = None
    legal_hold: bool = False
    anonymized: bool = False
    replaces: str | None = None  # vigil's rewrite of this raw version id (which then may go)
    parsed: Parsed | None = None
    error: str | None = None


@dataclass
class ObjectEntry:
    key: str
    versions: list[Version]  # newest first, as S3 lists them


@dataclass
class Location:
    store: str
    bucket: str
    region: str
    replica: bool = False
    locked: bool = False  # Object Lock enabled: lock and legal hold read per version
    error: str | None = None

    @property
    def arn(self) -> str:
        return f"arn:aws:s3:::{self.bucket}"


@dataclass
class Item:
    key: dict[str, Any]  # the item's primary key, typed as DynamoDB returns it
    ts: datetime | None
    subject: str | None
    size: int
    error: str | None = None
    raw: dict[str, Any] | None = None  # the whole item, kept only for stores that anonymize
    anonymized: bool = False  # written by vigil's anonymization (kept from then on)


@dataclass
class TableInfo:
    store: str
    table: str
    region: str
    arn: str = ""
    key_names: list[str] = field(default_factory=list)
    key_types: dict[str, str] = field(default_factory=dict)  # key attribute -> S, N or B
    error: str | None = None
