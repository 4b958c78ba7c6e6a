"""What `find` learns about one subject: each copy of their data, and what may happen to it.

Plain dataclasses; the JSON forms carry counts, reasons and dates only, never keys or ids,
so they can go into evidence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

Hold = tuple[str, "date | None", int, int]  # reason, deletable from (None: unknown), count, bytes


@dataclass
class Copy:
    """One object version or table item holding the subject's data (some or all of it)."""

    kind: str  # "object" (the whole version is theirs) | "records" (their records inside) | "item"
    location: str  # bucket or table
    region: str
    key: str  # object key, or the item's key as JSON text
    version_id: str = ""
    latest: bool = True
    replica: bool = False
    records: int = 0  # the subject's objects / records / items in this copy
    bytes: int = 0
    erase: int = 0  # of those, what erase deletes or anonymizes
    held: list[Hold] = field(default_factory=list)
    whole: bool = False  # erase removes the whole version (delete_versions) rather than rewriting it
    counts: dict[str, int] | None = None  # the rewrite's counts (latest version of a shared object)
    data: list[Any] = field(default_factory=list)  # the subject's data, only when exporting
    modified: datetime | None = None  # when this object version was written (S3 LastModified)


@dataclass
class StoreFound:
    store: str
    kind: str
    category: str
    action: str  # what erase does here: delete | anonymize
    resource: str = ""
    replicas: list[str] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    markers: list[tuple[str, str, str, str]] = field(default_factory=list)  # (bucket, region, key, version) delete markers
    note: str = ""  # why the store could not be searched for a subject
    errors: list[str] = field(default_factory=list)
    scanned: int = 0  # object versions or items read
    unreadable: int = 0  # records that could not be read in objects that mention the subject: they may be theirs

    @property
    def incomplete(self) -> list[str]:
        """Why this store's answer may leave part of the subject's data out (empty: it is whole)."""
        out = [f"{self.store} was not searched: {self.note}"] if self.note else []
        if self.unreadable:
            out.append(f"{self.unreadable} record{'s' if self.unreadable != 1 else ''} unreadable in {self.store}")
        return out + [f"{self.store}: {e}" for e in self.errors]

    @property
    def erasable(self) -> int:
        return sum(c.erase for c in self.copies)

    @property
    def held(self) -> int:
        return sum(n for c in self.copies for _, _, n, _ in c.held)

    def holds(self) -> list[dict[str, Any]]:
        merged: dict[str, list] = {}
        for copy in self.copies:
            for reason, until, n, _ in copy.held:
                slot = merged.setdefault(reason, [0, until])
                slot[0] += n
                if until is None or (slot[1] is not None and until > slot[1]):
                    slot[1] = until
        return [{"reason": r, "until": u.isoformat() if u else None, "count": n} for r, (n, u) in sorted(merged.items())]

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store, "kind": self.kind, "category": self.category, "action": self.action,
            "resource": self.resource, "replicas": self.replicas, "scanned": self.scanned,
            "copies": len(self.copies), "replica_copies": sum(1 for c in self.copies if c.replica),
            "records": sum(c.records for c in self.copies), "bytes": sum(c.bytes for c in self.copies),
            "erase": self.erasable, "held": self.held, "holds": self.holds(),
            "note": self.note, "errors": list(self.errors), "unreadable": self.unreadable, "incomplete": self.incomplete,
        }


@dataclass
class BackupCopy:
    """Where AWS Backup may still hold the subject's data: whole snapshots, never edited."""

    where: str  # plan rule / recovery point, named by AWS ids (no personal data)
    region: str
    until: date | None  # None: kept until deleted by hand
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"where": self.where, "region": self.region, "until": self.until.isoformat() if self.until else None,
                "note": self.note}


@dataclass
class Found:
    subject: str
    as_of: datetime
    stores: list[StoreFound] = field(default_factory=list)
    backups: list[BackupCopy] = field(default_factory=list)

    @property
    def erasable(self) -> int:
        return sum(s.erasable for s in self.stores)

    @property
    def held(self) -> int:
        return sum(s.held for s in self.stores)

    @property
    def copies(self) -> int:
        return sum(len(s.copies) for s in self.stores)

    @property
    def errors(self) -> list[str]:
        return [f"{s.store}: {e}" for s in self.stores for e in s.errors]

    @property
    def incomplete(self) -> list[str]:
        """Every reason the answer is not the whole truth: stores not searched, unreadable records,
        errors. A request is never done, and "no data found" never said, while this is non-empty."""
        return [reason for s in self.stores for reason in s.incomplete]

    def store(self, name: str) -> StoreFound:
        return next(s for s in self.stores if s.store == name)
