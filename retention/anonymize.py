"""What an object's records become: expired ones transformed (or removed), the rest kept as written.

One pure function, `rewrite`, used by the planner (to count) and by apply (to write), so apply
produces exactly what the plan announced. k-anonymity is judged per batch (one object) by
kanon.judge, climbing the category's ladder, or over the store's whole dataset (verify.scope:
dataset) by dataset_k.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from vigil.policy.models import S3Store

from .decide import ERROR, EXPIRED, HELD, Decision, Rules
from .kanon import Judged, judge
from .records import Record, encode, render
from .transforms import Anonymizer, is_anonymized

if TYPE_CHECKING:
    from .model import Version


class DatasetJudge(Protocol):
    """k judged over a whole dataset instead of one version (dataset_k.DatasetJudgement; a protocol, so the
    dataset module can build on this one without an import cycle)."""

    def judge(self, anonymizer: Anonymizer, version: Version, records: list[dict[str, Any]]) -> Judged: ...

@dataclass
class Rewrite:
    lines: list[bytes] = field(default_factory=list)  # the new content's records, each with its line break
    counts: dict[str, list[int]] = field(default_factory=dict)  # kind -> [records, bytes]
    holds: list[tuple[str, date | None, int, int]] = field(default_factory=list)  # reason, until, n, bytes
    errors: list[str] = field(default_factory=list)
    unreadable: int = 0  # records that could not be parsed: while any is in it, the raw version is kept
    refused: str | None = None
    refused_count: int = 0  # expired records left untouched because the batch was refused
    oldest: datetime | None = None  # clock start of the oldest expired record
    unnamed: dict[str, int] = field(default_factory=dict)  # field the category does not name -> records it was dropped from
    generalization: dict[str, str] = field(default_factory=dict)  # quasi-identifier -> ladder rung climbed (kanon.py)

    def add(self, kind: str, n: int, size: int) -> None:
        slot = self.counts.setdefault(kind, [0, 0])
        slot[0] += n
        slot[1] += size

    def n(self, kind: str) -> int:
        return self.counts.get(kind, [0, 0])[0]

    @property
    def changed(self) -> bool:
        return self.refused is None and (self.n("anonymize") + self.n("suppress") + self.n("delete")) > 0

    @property
    def expired(self) -> int:
        return self.n("anonymize") + self.n("suppress") + self.n("delete")


def _start(record: Record, version: Version, store: S3Store) -> datetime | None:
    return version.last_modified if store.layout == "object" else record.ts


@dataclass
class Sorted:
    """One version's records sorted by what happens to them (before any k-anonymity is judged)."""
    slots: list[Record | dict | None]  # every record in order; a removed one becomes None, a rewritten one its dict
    expired: list[tuple[int, Record, Decision]]  # (slot, record, decision) of the records past retention
    published: list[dict[str, Any]]  # fields of the records vigil already anonymized (part of the published dataset)


def sort_records(rules: Rules, store: S3Store, version: Version, anonymizer: Anonymizer | None, flagged: bool,
                 out: Rewrite, key_subject: str | None = None) -> Sorted:
    """Decide every record of one version, counting the kept, held and unreadable ones in `out`."""
    parsed = version.parsed
    assert parsed is not None
    found = Sorted([], [], [])
    expired, slots = found.expired, found.slots
    for record in parsed.records:
        slots.append(record)
        if record.error is not None or record.fields is None:
            out.unreadable += record.unreadable
            out.errors.append(record.error or "unreadable record")
            out.add("error", 1, record.size)
            continue
        if anonymizer is not None and is_anonymized(anonymizer, record.fields, flagged):
            found.published.append(record.fields)
            out.add("keep", 1, record.size)
            continue
        decision = rules.decide(_start(record, version, store), record.subject or key_subject, version.key,
                                version.lock_mode, version.lock_until, version.legal_hold)
        if decision.verdict == EXPIRED:
            expired.append((len(slots) - 1, record, decision))
        elif decision.verdict == HELD:
            out.holds.append((decision.reason, decision.until, 1, record.size))
            out.add("held", 1, record.size)
        elif decision.verdict == ERROR:
            out.errors.append(f"record {record.index + 1}: {decision.reason}")
            out.add("error", 1, record.size)
        else:
            out.add("keep", 1, record.size)
    return found


def rewrite(rules: Rules, store: S3Store, version: Version, anonymizer: Anonymizer | None, flagged: bool,
            remove: bool, key_subject: str | None = None, dataset: DatasetJudge | None = None) -> Rewrite:
    """Decide every record of one version; `lines` is the new content when `changed`.

    remove: expired records are dropped (action delete, or an old version) instead of transformed.
    key_subject: whose object this is, from `subject_from_key`, for records that do not say.
    dataset: k judged over the store's whole dataset (verify.scope: dataset, dataset_k.py) instead of this version alone.
    """
    out = Rewrite()
    parsed = version.parsed
    assert parsed is not None
    found = sort_records(rules, store, version, anonymizer, flagged, out, key_subject)
    slots, expired = found.slots, found.expired
    for _, _record, decision in expired:
        if decision.start is not None and (out.oldest is None or decision.start < out.oldest):
            out.oldest = decision.start
    if remove or anonymizer is None:
        for index, record, _ in expired:
            slots[index] = None
            out.add("delete", 1, record.size)
    elif expired:
        transformed = [anonymizer.record(record.fields or {}) for _, record, _ in expired]
        for _, record, _ in expired:
            anonymizer.unnamed(record.fields or {}, out.unnamed)
        judged = judge(anonymizer, transformed) if dataset is None else dataset.judge(anonymizer, version, transformed)
        suppressed, out.refused, out.generalization = judged.suppressed, judged.refused, judged.rung
        if out.refused is not None:
            out.errors.append(out.refused)
            out.refused_count = len(expired)
            for _, record, _ in expired:
                out.add("error", 1, record.size)
            return out
        for j, (index, record, _) in enumerate(expired):
            if j in suppressed:
                slots[index] = None
                out.add("suppress", 1, record.size)
            else:
                slots[index] = judged.records[j]
                out.add("anonymize", 1, record.size)
    out.lines = [render(slot, parsed) for slot in slots if slot is not None]
    return out


def new_body(result: Rewrite, version: Version, store: S3Store) -> bytes:
    assert version.parsed is not None
    return encode(result.lines, version.parsed, store.layout)
