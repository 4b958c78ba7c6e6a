"""Dataset-wide k-anonymity (`verify.scope: dataset`): k judged over everything one S3 location
publishes, instead of each object on its own.

The published dataset of a location (the store bucket, or one replica: each copy is readable on
its own) is the records this run anonymizes (every due record of its latest versions) plus the
records vigil anonymized there before (read anyway, since planning parses every object; counting
them also makes a resumed run judge as the interrupted one did). A first pass counts the
equivalence classes of both at every node of the category's ladder (kanon.nodes; locally in
Counters, with the Spark engine by a DataFrame's groupBy().count()). The first node, in kanon's
order, whose classes below k hold at most `max_suppression` of the dataset wins. The classes still
below k there are the suppression set: every rewrite suppresses exactly the due records in them
and publishes the rest, however small its own object's classes are. When no node is enough, the
store's anonymization is refused as a whole (no location of it is rewritten).

Only versions the first pass counted are published: one written after it, or unreadable then,
waits for the next run (its records would otherwise join classes nobody counted).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any

from vigil.aws import Aws
from vigil.policy.models import Category, S3Store

from .anonymize import Rewrite, sort_records
from .decide import Rules
from .inventory import iter_objects, listed_objects, subject_from_key, subject_matcher
from .kanon import Judged, NodeKeys, generalized, node_rung, nodes, refusal, rung_label
from .model import Location, ObjectEntry, Version
from .transforms import Anonymizer

ClassKey = tuple[str, ...]
WAITING = ("written after the dataset's k-anonymity was counted (or unreadable then): it is anonymized on the next "
           "run, once its records are counted with the rest")


def dataset_scope(category: Category) -> bool:
    return category.action == "anonymize" and category.verify is not None and category.verify.scope == "dataset"


def version_digest(key: str, version_id: str) -> int:
    """A counted version, in 8 bytes (the same in every process, unlike hash())."""
    return int.from_bytes(hashlib.blake2b(f"{key}\0{version_id}".encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class DatasetJudgement:
    """What the first pass decided for one location; every rewrite of it (plan, apply, verify) judges by it."""

    location: str  # bucket
    k: int
    rung: dict[str, str] = field(default_factory=dict)  # the ladder node chosen for the whole dataset
    small: frozenset[ClassKey] = frozenset()  # classes (at `rung`) below k: their due records are suppressed
    due: int = 0  # records anonymized by this run
    published: int = 0  # records vigil had anonymized before (counted in the classes, never rewritten)
    suppressed: int = 0  # due records in `small`
    classes_below_k: int = 0
    refused: str | None = None
    counted: frozenset[int] | None = None  # version_digest of every version counted; None: not checked (apply)

    def judge(self, anonymizer: Anonymizer, version: Version, records: list[dict[str, Any]]) -> Judged:
        """One version's transformed due records as the dataset's judgement publishes them."""
        if self.refused is not None:
            return Judged(records, set(), self.refused)
        if self.counted is not None and version_digest(version.key, version.version_id) not in self.counted:
            return Judged(records, set(), WAITING)
        out = generalized(records, anonymizer.rung_ops(self.rung)) if self.rung else records
        if not self.small:
            return Judged(out, set(), None, dict(self.rung))
        keys = anonymizer.class_keys(out)
        return Judged(out, {i for i, key in enumerate(keys) if key in self.small}, None, dict(self.rung))

    def for_apply(self) -> DatasetJudgement:
        """Without the counted versions (apply acts only on planned ones): what is sent to Spark tasks."""
        return replace(self, counted=None)

    def to_json(self) -> dict[str, Any]:
        return {"location": f"arn:aws:s3:::{self.location}", "scope": "dataset", "k": self.k,
                "records": self.due + self.published, "due": self.due, "already_anonymized": self.published,
                "suppressed": self.suppressed, "classes_below_k": self.classes_below_k,
                "generalization": rung_label(self.rung), "refused": self.refused}


def record_keys(anonymizer: Anonymizer, ladder: list[dict[str, int]], due: list[dict[str, Any]],
                published: list[dict[str, Any]]) -> Iterator[tuple[int, int, ClassKey]]:
    """(node index, 1 if due else 0, class key) for each record at each node of the ladder."""
    for records, is_due in ((due, 1), (published, 0)):
        if records:
            keyed = NodeKeys(anonymizer, records)
            for index, node in enumerate(ladder):
                for key in keyed.at(node):
                    yield index, is_due, key


@dataclass(frozen=True)
class CountTask:
    """What counting one location needs, on the driver or in a Spark task (pickled to it)."""

    profile: str | None
    endpoint_url: str | None
    loc: Location
    store: S3Store
    rules: Rules
    anonymizer: Anonymizer

    def version(self, entry: ObjectEntry) -> tuple[Version | None, list[dict[str, Any]], list[dict[str, Any]]]:
        """The entry's latest version (None when it could not be read), its due records transformed and its
        already anonymized records. `entry` holds the latest version alone (`latest_only`), read."""
        version = entry.versions[0] if entry.versions else None
        if version is None or version.error is not None or version.parsed is None:
            return None, [], []
        found = sort_records(self.rules, self.store, version, self.anonymizer, version.anonymized, Rewrite(),
                             subject_from_key(subject_matcher(self.store), entry.key))
        return version, [self.anonymizer.record(r.fields or {}) for _, r, _ in found.expired], found.published


def latest_only(entries: Iterable[ObjectEntry]) -> Iterator[ObjectEntry]:
    """Each key with its latest data version alone: only those are anonymized (older ones are deleted)."""
    for entry in entries:
        latest = [v for v in entry.versions if v.is_latest and not v.delete_marker]
        if latest:
            yield ObjectEntry(entry.key, latest)


SPILL = 2_000_000  # distinct (node, class) counts held in memory before they are added to a file on disk


class Tally:
    """Class sizes at every node, counted on this machine: in Counters, added to an SQLite file in a
    private temporary folder whenever they hold `spill_at` classes, so memory stays bounded."""

    def __init__(self, anonymizer: Anonymizer, spill_at: int = SPILL):
        self.ladder = nodes(anonymizer)
        self.total: list[Counter[ClassKey]] = [Counter() for _ in self.ladder]
        self.due: list[Counter[ClassKey]] = [Counter() for _ in self.ladder]
        self.due_records = self.published_records = 0
        self.counted: set[int] = set()
        self.spill_at = spill_at
        self._folder: str | None = None
        self._db: sqlite3.Connection | None = None

    def add(self, anonymizer: Anonymizer, version: Version, due: list[dict[str, Any]], published: list[dict[str, Any]]) -> None:
        self.counted.add(version_digest(version.key, version.version_id))
        self.due_records += len(due)
        self.published_records += len(published)
        for records, is_due in ((due, True), (published, False)):
            if records:  # whole columns at a time: Counter.update counts in C
                keyed = NodeKeys(anonymizer, records)
                for index, node in enumerate(self.ladder):
                    keys = keyed.at(node)
                    self.total[index].update(keys)
                    if is_due:
                        self.due[index].update(keys)
        if sum(len(total) for total in self.total) >= self.spill_at:
            self._spill()

    def _spill(self) -> None:
        if self._db is None:
            self._folder = tempfile.mkdtemp(prefix="vigil-dataset-k-")  # 0700: the classes are the data's
            self._db = sqlite3.connect(os.path.join(self._folder, "classes.sqlite"))
            self._db.execute("CREATE TABLE classes (node INTEGER, class TEXT, total INTEGER, due INTEGER, "
                             "PRIMARY KEY (node, class)) WITHOUT ROWID")
        rows = ((index, json.dumps(key), n, self.due[index].get(key, 0))
                for index, total in enumerate(self.total) for key, n in total.items())
        self._db.executemany("INSERT INTO classes VALUES (?, ?, ?, ?) ON CONFLICT (node, class) DO UPDATE SET "
                             "total = total + excluded.total, due = due + excluded.due", rows)
        self._db.commit()
        for counter in (*self.total, *self.due):
            counter.clear()

    def below(self, k: int) -> dict[int, tuple[int, int]]:
        """node index -> (due records in classes below k, those classes)."""
        if self._db is not None:
            self._spill()
            query = "SELECT node, SUM(due), COUNT(*) FROM classes WHERE total < ? AND due > 0 GROUP BY node"
            return {int(node): (int(due), int(n)) for node, due, n in self._db.execute(query, (k,))}
        out = {}
        for index, (total, due) in enumerate(zip(self.total, self.due, strict=True)):
            small = [n for key, n in due.items() if total[key] < k]
            out[index] = (sum(small), len(small))
        return out

    def small(self, index: int, k: int) -> frozenset[ClassKey]:
        if self._db is not None:
            query = "SELECT class FROM classes WHERE node = ? AND total < ? AND due > 0"
            return frozenset(tuple(json.loads(key)) for (key,) in self._db.execute(query, (index, k)))
        return frozenset(key for key in self.due[index] if self.total[index][key] < k)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            shutil.rmtree(str(self._folder), ignore_errors=True)
            self._db = None


def count_local(task: CountTask, aws: Aws, pool: Executor, entries: Iterable[ObjectEntry], tally: Tally) -> Tally:
    for entry in iter_objects(aws, task.loc, task.store, pool, True, latest_only(entries)):
        version, due, published = task.version(entry)
        if version is not None:
            tally.add(task.anonymizer, version, due, published)
    return tally


def decide(anonymizer: Anonymizer, location: str, ladder: list[dict[str, int]], due: int, published: int,
           below: dict[int, tuple[int, int]], small: Callable[[int], frozenset[ClassKey]],
           counted: frozenset[int]) -> DatasetJudgement:
    """The first node (kanon's order) within max_suppression of the dataset, or the refusal naming the closest."""
    total, k = due + published, anonymizer.k
    closest: tuple[int, int, int] | None = None
    for index, node in enumerate(ladder):
        suppressed, classes = below.get(index, (0, 0))
        if closest is None or suppressed < closest[0]:
            closest = (suppressed, classes, index)
        if refusal(anonymizer, suppressed, total) is None:
            return DatasetJudgement(location, k, node_rung(anonymizer, node), small(index) if suppressed else frozenset(),
                                    due, published, suppressed, classes, None, counted)
    assert closest is not None
    suppressed, classes, index = closest
    reason = f"dataset-wide {refusal(anonymizer, suppressed, total)} (of the {total} records, {published} were anonymized before)"
    if len(ladder) > 1:
        reason += f"; no rung of the generalization ladder is enough: the closest is {rung_label(node_rung(anonymizer, ladder[index]))}"
    return DatasetJudgement(location, k, {}, frozenset(), due, published, suppressed, classes,
                            reason + "; nothing of the store is anonymized", counted)


def judge_local(task: CountTask, aws: Aws, pool: Executor, entries: Iterable[ObjectEntry] | None,
                spill_at: int = SPILL) -> DatasetJudgement:
    tally = Tally(task.anonymizer, spill_at)
    try:
        count_local(task, aws, pool, entries if entries is not None else listed_objects(aws, task.loc, task.store.prefix), tally)
        k = task.anonymizer.k
        return decide(task.anonymizer, task.loc.bucket, tally.ladder, tally.due_records, tally.published_records,
                      tally.below(k), lambda index: tally.small(index, k), frozenset(tally.counted))
    finally:
        tally.close()


def refuse_all(judgements: dict[str, DatasetJudgement]) -> dict[str, DatasetJudgement]:
    """A store is anonymized everywhere or nowhere: one refused location refuses the others."""
    refused = next((j for j in judgements.values() if j.refused is not None), None)
    if refused is None:
        return judgements
    why = f"location {refused.location} refused: {refused.refused}"
    return {bucket: j if j.refused is not None else replace(j, refused=why, small=frozenset(), rung={})
            for bucket, j in judgements.items()}
