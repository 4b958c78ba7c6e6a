"""`find`: every copy of one subject's data, in every store and replica, read concurrently.

S3 stores are searched by key (`subject_from_key`: one ListObjectVersions on that key) or by
the records inside objects (`subject_field`: every version streamed on a bounded pool and
searched for the id as it decompresses, so only objects that mention the subject are parsed). Tables are queried
(subject attribute = partition key) or scanned in parallel segments with a filter. Memory
stays flat: listings stream, at most `window` objects are in memory, only matches are kept.
"""
from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from typing import Any

import botocore.exceptions

from vigil import progress
from vigil.aws import Aws, describe_error
from vigil.policy import Policy
from vigil.policy.models import Category, DynamoDBStore, PostgresStore, RDSStore, S3Store
from vigil.retention.anonymize import rewrite
from vigil.retention.inventory import FLAG, REPLACES, Location, Version, listed_objects, s3_locations
from vigil.retention.keys import RetentionKeys
from vigil.retention.records import Unreadable, gunzip, is_gz, parse
from vigil.retention.transforms import parse_time

from .backups import backup_copies
from .decide import SubjectRules, erase_action, hold, store_rules, subject_anonymizer
from .model import Copy, Found, StoreFound
from .rows import find_rows, rds_backup_copies
from .stream import CHUNK, limit_malloc_arenas, mentions
from .tables import find_items, subjects_table_store

# The subjects table's account records have no category of their own: no minimum period, no action.
ACCOUNT_RECORDS = Category.model_validate({"retain": "forever", "description": "account records (the policy's subjects table)"})
Observe = Callable[[str, str, Any], None]  # retention.resume.Resume.observe
Searched = tuple[Copy | None, int, str]  # Finder._version: the subject's copy, unreadable records, an error


def subject_keys(store: S3Store, subject: str) -> tuple[str, re.Pattern[str]] | None:
    """(the prefix to list, the pattern every key of the subject matches), from `subject_from_key`."""
    pattern = store.key_pattern(subject)
    return None if pattern is None else (str(store.key_prefix(subject)), pattern)


def needle(subject: str) -> bytes | None:
    """Bytes every record of the subject contains, when the id needs no escaping in JSON or CSV."""
    if json.dumps(subject)[1:-1] != subject or "," in subject:
        return None
    return subject.encode("utf-8")


def bounded(pool: Executor, fn: Callable, items: Iterable, window: int) -> Iterator[Any]:
    """fn(item) for every item on `pool`, at most `window` in flight; results as they finish."""
    running: set[Future] = set()
    for item in items:
        running.add(pool.submit(fn, item))
        if len(running) >= window:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            yield from (f.result() for f in done)
    for future in running:
        yield future.result()


class Finder:
    def __init__(self, aws: Aws, policy: Policy, keys: RetentionKeys, subject: str, as_of: datetime,
                 pool: Executor, export: bool = False, observe: Observe | None = None, window: int = 64):
        self.aws, self.policy, self.keys, self.subject, self.as_of = aws, policy, keys, subject, as_of
        self.pool, self.export, self.observe, self.window = pool, export, observe, window
        self.needle = needle(subject)
        self._successors: dict[tuple[str, str, str], str] = {}  # (bucket, key, old version) -> the next one

    def store(self, store) -> StoreFound:
        category = ACCOUNT_RECORDS if store.name.startswith("subjects:") else self.policy.category_of(store)
        if isinstance(store, RDSStore):
            return StoreFound(store.name, "rds", store.category, erase_action(category),
                              note="RDS stores are not read by vigil; erase the subject's rows with the database's own tools")
        if isinstance(store, PostgresStore):
            found = StoreFound(store.name, "postgres", store.category, erase_action(category))
            find_rows(self, store, found)
            return found
        if not isinstance(store, (DynamoDBStore, S3Store)):
            return StoreFound(store.name, store.kind, store.category, erase_action(category),
                              note=f"vigil subject does not search {store.kind} stores yet")
        if isinstance(store, DynamoDBStore):
            label = "account records" if category is ACCOUNT_RECORDS else store.category
            found = StoreFound(store.name, "dynamodb", label, erase_action(category))
            find_items(self, store, store_rules(self.policy, store.name, category, self.as_of), found)
            return found
        return self._s3(store, category)

    # --- S3 ----------------------------------------------------------------------------

    def _s3(self, store: S3Store, category) -> StoreFound:
        found = StoreFound(store.name, "s3", store.category, erase_action(category))
        keys = subject_keys(store, self.subject)
        if keys is None and (store.layout == "object" or store.subject_field is None):
            found.note = ("cannot tell whose data an object holds: give the store 'subject_from_key'"
                          + ("" if store.layout == "object" else " or 'subject_field'"))
            return found
        rules = SubjectRules(self.subject, store_rules(self.policy, store.name, category, self.as_of), whole=keys is not None)
        anonymizer = subject_anonymizer(category, self.keys.pseudonym)
        read = keys is None or category.action == "anonymize" or self.export
        locations = s3_locations(self.aws, self.policy, store)
        found.resource, found.replicas = locations[0].arn, [loc.arn for loc in locations[1:]]
        for loc in locations:
            if loc.error:
                found.errors.append(f"{loc.arn}: {loc.error}")
                continue
            try:
                work = self._versions(loc, keys[0] if keys else store.prefix, keys[1] if keys else None, found)
                def one(work: tuple[Location, Version, bool]) -> Searched:
                    return self._version(*work, store, rules, anonymizer, read)
                for copy, unreadable, error in bounded(self.pool, one, work, self.window):
                    if copy is not None:
                        found.copies.append(copy)
                    found.unreadable += unreadable
                    if error:
                        found.errors.append(f"{loc.arn}: {error}")
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
                found.errors.append(f"{loc.arn}: {describe_error('s3:ListObjectVersions', exc)}")
        return found

    def _versions(self, loc: Location, prefix: str, theirs: re.Pattern[str] | None,
                  found: StoreFound) -> Iterator[tuple[Location, Version, bool]]:
        """(location, version, whether the key has other data versions) for every data version
        (with `theirs`: of the keys that are the subject's)."""
        for entry in listed_objects(self.aws, loc, prefix):
            if theirs is not None and not theirs.fullmatch(entry.key):
                continue
            if self.observe is not None:
                self.observe(loc.bucket, self.keys.hash(entry.key), entry)
            data = [v for v in entry.versions if not v.delete_marker]
            alone = len(data) == 1
            for older, newer in zip(data[1:], data, strict=False):  # newest first: each old version's successor
                self._successors[(loc.bucket, older.key, older.version_id)] = newer.version_id
            for version in entry.versions:
                if version.delete_marker:
                    if theirs is not None:
                        found.markers.append((loc.bucket, loc.region, entry.key, version.version_id))
                    continue
                found.scanned += 1
                yield loc, version, not alone

    def _version(self, loc: Location, version: Version, others: bool, store: S3Store, rules: SubjectRules, anonymizer,
                 read: bool) -> Searched:
        """(the subject's copy in this version or None, records that could not be read and may be
        theirs, why the object itself could not be read)."""
        s3 = self.aws.client("s3", loc.region)
        copy = Copy("object" if rules.whole else "records", loc.bucket, loc.region, version.key, version.version_id,
                    version.is_latest, loc.replica, bytes=version.size, modified=version.last_modified)
        try:
            if read:
                answer = s3.get_object(Bucket=loc.bucket, Key=version.key, VersionId=version.version_id)
                body = self._body(s3, loc, version, answer, rules.whole)
                if body is None:
                    return None, 0, ""  # does not mention the subject
            elif loc.locked:
                answer, body = s3.head_object(Bucket=loc.bucket, Key=version.key, VersionId=version.version_id), b""
            else:
                answer, body = {}, b""
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            why = describe_error("s3:GetObject" if read else "s3:HeadObject", exc)
            return self._unreadable(copy, why), 0, f"an object version could not be read: {why}"
        except zlib.error as exc:
            return self._undecodable(copy, rules, f"object could not be decoded: {exc}")
        _lock_state(version, answer)
        if not read:  # a whole object of the subject, deleted as it is
            return self._whole(copy, rules, version), 0, ""
        try:
            text = gunzip(body) if is_gz(version.key) else body
        except Unreadable as exc:  # corrupt, or past the size and ratio limits (a gzip bomb)
            return self._undecodable(copy, rules, f"object could not be decoded: {exc}")
        if not rules.whole and self.needle is not None and self.needle not in text:
            return None, 0, ""
        try:
            version.parsed = parse(text, version.key.removesuffix(".gz"), store.layout, store.timestamp_field, store.subject_field)
        except Unreadable as exc:  # a csv field past the csv module's limit
            return self._undecodable(copy, rules, f"object could not be read: {exc}")
        version.parsed.gz = is_gz(version.key)
        unreadable = 0 if rules.whole else sum(1 for r in version.parsed.records if r.fields is None and self._may_be_theirs(r.raw))
        mine = version.parsed.records if rules.whole else [r for r in version.parsed.records if r.subject == self.subject]
        if not mine:
            return None, unreadable, ""
        if self.export:
            copy.data = [r.fields if r.fields is not None else r.text for r in mine]
        if rules.whole and rules.category.action != "anonymize":
            copy.records = 1
            return self._whole(copy, rules, version), unreadable, ""
        copy.records, copy.bytes = len(mine), sum(r.size for r in mine)
        if version.is_latest:
            return self._rewrite(copy, rules, store, version, anonymizer, others), unreadable, ""
        return self._old_version(copy, rules, store, version, lambda: self._rewritten(s3, loc, version)), unreadable, ""

    def _may_be_theirs(self, raw: bytes) -> bool:
        """An unreadable record has no subject to compare: it may be theirs when it holds the id's bytes
        (or always, when the id cannot be searched as bytes)."""
        return self.needle is None or self.needle in raw

    def _undecodable(self, copy: Copy, rules: SubjectRules, reason: str) -> Searched:
        """Kept and said when the object is theirs; either way it may hold their data: the answer is incomplete."""
        return (self._unreadable(copy, reason) if rules.whole else None), 0, f"an object version {reason}"

    def _body(self, s3, loc: Location, version: Version, answer: dict[str, Any], whole: bool) -> bytes | None:
        """The object's bytes when it may hold the subject's records; None when streaming it shows it does not."""
        if whole or self.needle is None:
            return answer["Body"].read()
        gz, kept = is_gz(version.key), list[bytes]()
        if not mentions(answer["Body"].iter_chunks(CHUNK), gz, self.needle, kept):
            return None
        if gz:
            return b"".join(kept)
        again = s3.get_object(Bucket=loc.bucket, Key=version.key, VersionId=version.version_id)  # rare: a plain match
        return again["Body"].read()

    def _whole(self, copy: Copy, rules: SubjectRules, version: Version) -> Copy:
        copy.kind, copy.records, copy.whole = "object", 1, True
        held = hold(rules.base, version.last_modified, self.subject, version.key, version.lock_mode, version.lock_until, version.legal_hold)
        if held is not None:
            copy.held.append((held[0], held[1], 1, copy.bytes))
        else:
            copy.erase = 1
        return copy

    def _rewrite(self, copy: Copy, rules: SubjectRules, store: S3Store, version: Version, anonymizer, others: bool) -> Copy:
        """The latest version: the subject's records go (or are anonymized); everyone else's stay."""
        deleting = anonymizer is None
        result = rewrite(rules, store, version, anonymizer, version.anonymized, deleting)
        copy.held = [(reason, until, n, size) for reason, until, n, size in result.holds]
        copy.counts = {k: result.n(k) for k in ("anonymize", "suppress", "delete", "keep")}
        copy.erase = result.expired
        rest = result.n("keep") + result.n("held") + result.n("error") + result.n("anonymize")
        # Nothing else in it and no older version to become current in its place: delete the version itself.
        copy.whole = deleting and copy.erase > 0 and rest == 0 and not others
        return copy

    def _rewritten(self, s3, loc: Location, version: Version) -> bool:
        """Whether the next version is vigil's rewrite of this one (a crash or a failed delete left
        the raw version behind): what is held in it lives on, verbatim, in the rewrite."""
        successor = self._successors.get((loc.bucket, version.key, version.version_id))
        if successor is None:
            return False
        head = s3.head_object(Bucket=loc.bucket, Key=version.key, VersionId=successor)
        return (head.get("Metadata") or {}).get(REPLACES) == version.version_id

    def _old_version(self, copy: Copy, rules: SubjectRules, store: S3Store, version: Version,
                     rewritten: Callable[[], bool] = lambda: False) -> Copy:
        """An older version cannot be rewritten: it is deleted whole, unless anything in it is held
        (another subject's legal hold, a minimum period, Object Lock): then all of it stays, unless
        vigil already rewrote it (`rewritten`), so its held records are in the current version too."""
        reasons = []
        for record in version.parsed.records:
            created = version.last_modified if store.layout == "object" else record.ts
            subject = self.subject if rules.whole else record.subject
            held = hold(rules.base, created, subject, version.key, version.lock_mode, version.lock_until, version.legal_hold)
            if held is not None:
                reasons.append(held)
        if reasons and not rewritten():
            dates = [u for _, u in reasons]
            until = max(d for d in dates if d is not None) if all(d is not None for d in dates) else None
            copy.held.append((reasons[0][0] + " (an older version shared with held data)" if len(set(reasons)) == 1 else
                              "older version holds held data", until, copy.records, copy.bytes))
        else:
            copy.erase, copy.whole = copy.records, True
        return copy

    def _unreadable(self, copy: Copy, reason: str) -> Copy:
        copy.held.append((f"could not be read: {reason}", None, 1, copy.bytes))
        return copy


def _lock_state(version: Version, answer: dict[str, Any]) -> None:
    version.lock_mode = answer.get("ObjectLockMode")
    until = answer.get("ObjectLockRetainUntilDate")
    version.lock_until = until.astimezone(UTC) if isinstance(until, datetime) else parse_time(until)
    version.legal_hold = answer.get("ObjectLockLegalHoldStatus") == "ON"
    version.anonymized = FLAG in (answer.get("Metadata") or {})


def find_subject(aws: Aws, policy: Policy, keys: RetentionKeys, subject: str, as_of: datetime, workers: int = 16,
                 export: bool = False, observe: Observe | None = None) -> Found:
    """Every copy of the subject's data, in policy order; the subjects table last when no store names it."""
    limit_malloc_arenas()
    found = Found(subject, as_of)
    stores: list = list(policy.stores)
    extra = subjects_table_store(policy)
    if extra is not None:
        stores.append(extra)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigil-find") as pool, \
            ThreadPoolExecutor(max_workers=max(1, min(len(stores), 8)), thread_name_prefix="vigil-find-store") as per_store:
        finder = Finder(aws, policy, keys, subject, as_of, pool, export, observe, window=max(16, workers * 4))
        progress.phase(f"searching {len(stores)} store(s) for the subject", total=len(stores))

        def search(store):
            try:
                return finder.store(store)
            finally:
                progress.advance()
        found.stores = list(per_store.map(search, stores))
    _keep_account_record(policy, found)
    found.backups = backup_copies(aws, policy, found, as_of) + rds_backup_copies(aws, policy, found, as_of)
    return found


def _keep_account_record(policy: Policy, found: Found) -> None:
    """Held data whose retention clock starts at account_closed needs the account's closed_at: keep that item."""
    if policy.subjects is None:
        return
    dated = {s.name for s in policy.stores if policy.category_of(s).after == "account_closed"}
    if not any(s.held for s in found.stores if s.store in dated):
        return
    for store in found.stores:
        for copy in store.copies:
            if copy.kind == "item" and copy.location == policy.subjects.table and copy.erase:
                copy.erase = 0
                copy.held.append(("the account record dates held data's retention (closed_at)", None, 1, copy.bytes))
