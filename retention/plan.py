"""The plan: a pure function of (policy, inventory, as-of). No I/O here.

The planner is fed one object (all its versions) or one item at a time and returns the
actions for it; deletes are batched up to 1,000 versions per location (one DeleteObjects).
Every action carries a stable `action_id` (a digest of what it targets), so a resumed run
can match an intent in the ledger to the same action planned again.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from vigil.policy.models import S3Store

from .anonymize import rewrite
from .decide import ERROR, EXPIRED, HELD, Rules
from .inventory import subject_from_key, subject_matcher
from .kanon import rung_label
from .keys import RetentionKeys
from .model import Location, ObjectEntry, Version
from .transforms import Anonymizer

if TYPE_CHECKING:
    from .dataset_k import DatasetJudgement

KINDS = ("delete", "anonymize", "suppress", "keep", "held", "error")
S3_BATCH = 1000
MAX_ERRORS = 200  # listed per store (all are counted)


def reads_records(store: S3Store, category) -> bool:
    """Records inside objects are read for jsonl/csv, and for whole objects that are anonymized."""
    return not category.retain.forever and (store.layout != "object" or category.action == "anonymize")


def action_id(action: dict[str, Any]) -> str:
    identity = {k: action[k] for k in ("action", "store", "location", "objects", "object", "version_id", "items") if k in action}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass
class Summary:
    """Per-store (plan) or per-location (verify) tallies; the JSON shape of retention-plan.json."""

    store: str
    kind: str
    category: str
    action: str
    resource: str
    region: str
    replicas: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    bytes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    holds: dict[str, list] = field(default_factory=dict)  # reason -> [count, latest until]
    errors: list[dict[str, str]] = field(default_factory=list)
    oldest_expired: datetime | None = None
    samples: list[str] = field(default_factory=list)
    scanned: int = 0
    stuck: int = 0  # past retention but not handled (anonymization refused or unsupported): still counts as left
    verify: dict[str, Any] = field(default_factory=lambda: {"status": "not_run", "remaining": 0})
    unnamed: dict[str, int] = field(default_factory=dict)  # fields the category does not name, dropped when anonymizing
    inventory: dict[str, Any] | None = None  # the S3 Inventory report planned from (instead of a listing), and its age
    generalized: dict[str, int] = field(default_factory=dict)  # ladder rung (kanon.rung_label) -> batches anonymized at it
    datasets: list[DatasetJudgement] = field(default_factory=list)  # verify.scope: dataset, one per location (dataset_k.py)

    def climbed(self, rung: dict[str, str]) -> None:
        label = rung_label(rung)
        if label is not None:
            self.generalized[label] = self.generalized.get(label, 0) + 1

    def dropped(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            self.unnamed[name] = self.unnamed.get(name, 0) + n

    def add(self, kind: str, n: int, size: int) -> None:
        self.counts[kind] += n
        self.bytes[kind] += size

    def hold(self, reason: str, until: date | None, n: int, size: int) -> None:
        slot = self.holds.setdefault(reason, [0, until])
        # The date the whole group becomes deletable: the latest one; unknown (None) wins.
        if slot[0] and (until is None or slot[1] is None):
            slot[1] = None
        elif until is not None and until > slot[1]:
            slot[1] = until
        slot[0] += n
        self.add("held", n, size)

    def error(self, target: str, reason: str, n: int = 1, size: int = 0) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append({"object": target, "reason": reason})
        self.add("error", n, size)

    def expired(self, start: datetime | None, sample: str) -> None:
        if start is not None and (self.oldest_expired is None or start < self.oldest_expired):
            self.oldest_expired = start
        if len(self.samples) < 5:
            self.samples.append(sample)

    @property
    def outstanding(self) -> int:
        return self.counts["delete"] + self.counts["anonymize"] + self.counts["suppress"] + self.stuck

    def to_json(self) -> dict[str, Any]:
        return {
            "store": self.store, "kind": self.kind, "category": self.category, "action": self.action,
            "resource": self.resource, "region": self.region, "replicas": self.replicas,
            "counts": dict(self.counts), "bytes": dict(self.bytes),
            "holds": [{"reason": r, "until": u.isoformat() if u else None, "count": n} for r, (n, u) in sorted(self.holds.items())],
            "errors": list(self.errors),
            "unnamed_fields": dict(sorted(self.unnamed.items())),
            "generalized": dict(sorted(self.generalized.items())),
            "verify": dict(self.verify),
        } | ({"inventory": self.inventory} if self.inventory else {}) | (
            {"k_anonymity": [d.to_json() for d in self.datasets]} if self.datasets else {})


def tally(summary: Summary, d, size: int, target: str) -> bool:
    """Count one whole object or item under its decision; True when it is to be deleted."""
    if d.verdict == EXPIRED:
        summary.add("delete", 1, size)
        summary.expired(d.start, target)
        return True
    if d.verdict == HELD:
        summary.hold(d.reason, d.until, 1, size)
    elif d.verdict == ERROR:
        summary.error(target, d.reason, 1, size)
    else:
        summary.add("keep", 1, size)
    return False


class Planner:
    """Plans one S3 store (DynamoDB: plan_items.ItemPlanner). Feed it objects or items; call `flush()` at the end for the last batches."""

    def __init__(self, rules: Rules, store: S3Store, keys: RetentionKeys, summary: Summary, anonymizer: Anonymizer | None,
                 dataset: DatasetJudgement | None = None):
        self.rules = rules
        self.dataset = dataset  # verify.scope: dataset: k judged over the location's whole dataset (dataset_k.py)
        if dataset is not None:
            summary.datasets.append(dataset)
        self.store = store
        self.keys = keys
        self.summary = summary
        self.anonymizer = anonymizer
        self.deleting = rules.category.action == "delete"
        self._pattern = subject_matcher(store)
        self._pending: dict[tuple[str, str], list[tuple[str, str, int]]] = {}  # (bucket, region) -> [(key, version, size)]

    # --- S3 ----------------------------------------------------------------------------

    def object(self, loc: Location, entry: ObjectEntry) -> list[dict[str, Any]]:
        store: S3Store = self.store
        records = reads_records(store, self.rules.category)
        out: list[dict[str, Any]] = []
        data = [v for v in entry.versions if not v.delete_marker]
        self.summary.scanned += len(data)
        doomed: list[tuple[str, int]] = []  # (version id, bytes) to delete permanently
        subject = self._subject(entry.key)
        target = self.keys.hash(entry.key)
        # Raw versions vigil rewrote: their held records live on, verbatim, in the rewrite.
        superseded = {v.replaces for v in data if v.replaces}
        for version in data:
            if version.error is not None:  # not read: it may hold what is past retention, so it counts as left
                self.summary.error(target, version.error, 1, version.size)
                self.summary.stuck += 1
                continue
            if not records:
                d = self.rules.decide(version.last_modified, subject, entry.key, version.lock_mode, version.lock_until, version.legal_hold)
                self._tally_whole(d, version.size, target, doomed, version.version_id)
                continue
            action = self._records(loc, entry.key, version, subject, target, doomed, version.version_id in superseded)
            if action is not None:
                out.append(action)
        if doomed and len(doomed) == len(data):
            # Every data version goes, so the delete markers go too: nothing of the key is left.
            doomed += [(v.version_id, 0) for v in entry.versions if v.delete_marker]
        for version_id, size in doomed:
            pending = self._pending.setdefault((loc.bucket, loc.region), [])  # a fresh list after each batch
            pending.append((entry.key, version_id, size))
            if len(pending) >= S3_BATCH:
                out.append(self._delete_batch(loc.bucket, loc.region))
        return out

    def _records(self, loc: Location, key: str, version: Version, subject: str | None, target: str,
                 doomed: list[tuple[str, int]], superseded: bool = False) -> dict[str, Any] | None:
        """One version of a records object: tally its records; a rewrite action, or the version doomed.

        superseded: vigil rewrote this (old) version, so records held in it are in the rewrite too,
        and expired raw records in it are deleted with it (a crash or a failed delete left it)."""
        store: S3Store = self.store
        # An old version cannot be rewritten: expired raw records in it mean the version goes.
        remove = self.deleting or not version.is_latest
        result = rewrite(self.rules, store, version, self.anonymizer, version.anonymized, remove, subject, self.dataset)
        for reason in result.errors[:3]:
            self.summary.error(target, reason, 0)
        self.summary.add("error", result.n("error"), result.counts.get("error", [0, 0])[1])
        for reason, until, n, size in result.holds:
            self.summary.hold(reason, until, n, size)
        self.summary.stuck += result.refused_count
        if result.expired or result.refused_count:
            self.summary.expired(result.oldest, target)
        if not version.is_latest:
            if result.expired and not result.errors and (superseded or not result.holds):
                records = len(version.parsed.records) if version.parsed is not None else result.expired
                self.summary.add("delete", result.expired if superseded else records, version.size)
                doomed.append((version.version_id, version.size))
                return None
            self.summary.add("keep", result.n("keep"), result.counts.get("keep", [0, 0])[1])
            if result.expired and result.holds:  # kept whole for the held records it also holds
                reason, until, _, _ = result.holds[0]
                self.summary.hold(f"{reason} (shares an old version)", until, result.expired, 0)
            elif result.expired:  # kept whole because some of its records cannot be read
                self.summary.stuck += result.expired
            return None
        for kind in ("keep", "anonymize", "suppress", "delete"):
            self.summary.add(kind, *result.counts.get(kind, [0, 0]))
        if result.refused is None:
            self.summary.dropped(result.unnamed)
            self.summary.climbed(result.generalization)
        if not result.changed:
            return None
        if result.unreadable:
            self.summary.error(target, f"{result.unreadable} records could not be read: the raw version is kept "
                                       f"(and counted as left) until they are fixed or removed", 0)
        remaining = result.n("keep") + result.n("held") + result.n("error") + result.n("anonymize")
        if self.deleting and remaining == 0:
            doomed.append((version.version_id, version.size))
            return None
        return self._rewrite_action(loc, key, version.version_id, result)

    def _subject(self, key: str) -> str | None:
        return subject_from_key(self._pattern, key)

    def _tally_whole(self, d, size: int, target: str, doomed: list, version_id: str) -> None:
        if tally(self.summary, d, size, target):
            doomed.append((version_id, size))

    def _rewrite_action(self, loc: Location, key: str, version_id: str, result) -> dict[str, Any]:
        action = {
            "action": "rewrite_object" if self.deleting else "anonymize_object",
            "store": self.store.name, "location": loc.bucket, "region": loc.region,
            "object": key, "version_id": version_id,
            "counts": {k: result.n(k) for k in ("anonymize", "suppress", "delete", "keep")},
        }
        if result.generalization:  # the object's ladder rung (kanon.py); apply re-judges and must reach the same
            action["generalization"] = result.generalization
        if self.dataset is not None:  # apply judges it by the location's dataset judgement, not the object alone
            action["k_scope"] = "dataset"
        action["action_id"] = action_id(action)
        return action

    def _delete_batch(self, bucket: str, region: str) -> dict[str, Any]:
        pending = self._pending.pop((bucket, region))
        action = {
            "action": "delete_versions", "store": self.store.name, "location": bucket, "region": region,
            "objects": [[key, version] for key, version, _ in pending],
            "count": len(pending), "bytes": sum(size for _, _, size in pending),
        }
        action["action_id"] = action_id(action)
        return action

    def flush(self) -> list[dict[str, Any]]:
        return [self._delete_batch(bucket, region) for (bucket, region), pending in list(self._pending.items()) if pending]
