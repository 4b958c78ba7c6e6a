"""Apply a PostgreSQL store's planned actions: batches, one transaction each, ledger intent before, outcome after.

Each batch: BEGIN; note the transaction id; SELECT the next due rows in key order FOR UPDATE
SKIP LOCKED (rows an application is changing right now are left for a later run); write the
intent (with the transaction id and the rows' keyed hashes) and fsync it; DELETE or UPDATE
those rows, guarded by the row version read (xmin), in the same transaction that holds their
locks; COMMIT; write the outcome. A kill at any point leaves either a committed batch or
nothing; the next run asks the server what became of the noted transaction (pg_xact_status)
and writes the missing outcome, so nothing is lost or counted twice, and a row anonymized
once is never anonymized again (the selection excludes rows already in anonymized shape).

A batch that would make the action touch more rows than were planned is rolled back and the
action stops there: the table changed in a way the plan did not foresee.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import psycopg

from ..apply import Stats
from ..keys import RetentionKeys
from .plan import StoreWork
from .rows import BATCH, Row, delete_next, delete_rows, judge, key_hash, key_params, select_batch, write_updates
from .sql import DUE

DELETE_BATCH = 5000


class PgApplier:
    def __init__(self, keys: RetentionKeys, ledger, work: Callable[[str], StoreWork], stats: Stats | None = None):
        self.keys = keys
        self.ledger = ledger
        self.work = work  # store name -> StoreWork
        self.stats = stats or Stats()
        self.extra_rows: dict[str, int] = {}  # store -> rows of partitions that could not be dropped

    def run(self, actions: list[dict[str, Any]]) -> Stats:
        for action in actions:
            try:
                getattr(self, action["action"])(action)
            except psycopg.Error as exc:  # the connection or the table failed: this action stops, others go on
                self._count("failed", action, 0)
                self.ledger.write("outcome", {**action, "action_id": f"{action['action_id']}:connect"},
                                  {"location": self.work(action["store"]).resource, "count": 0}, "failed",
                                  f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")
        return self.stats

    def _count(self, outcome: str, action: dict[str, Any], done: int) -> None:
        setattr(self.stats, outcome, getattr(self.stats, outcome) + 1)
        self.stats.done[action["action"]] = self.stats.done.get(action["action"], 0) + done

    def _batch_entry(self, action: dict[str, Any], txid: str) -> dict[str, Any]:
        return {"action_id": f"{action['action_id']}:{txid}", "action": action["action"], "store": action["store"]}

    def _target(self, work: StoreWork, rows: list[Row], txid: str, **more: Any) -> dict[str, Any]:
        """The batch as evidence: its first and last keys (keyed hashes), how many rows, which transaction."""
        first, last = (rows[0].key, rows[-1].key) if rows else ([], [])
        return self._range(work, first, last, len(rows), txid, **more)

    def _range(self, work: StoreWork, first: list[str | None], last: list[str | None], count: int, txid: str,
               **more: Any) -> dict[str, Any]:
        return {"location": work.resource, "first": key_hash(self.keys.evidence, first),
                "last": key_hash(self.keys.evidence, last), "count": count, "txid": txid, **more}

    # --- retention ---------------------------------------------------------------------

    def pg_delete_rows(self, action: dict[str, Any]) -> None:
        """One statement per batch (select, lock and delete), then the intent, durable, then COMMIT:
        the batch's change takes effect only at COMMIT, so its intent is on disk before it does."""
        work = self.work(action["store"])
        planned, done, after = int(action["count"]), 0, None
        with work.connect() as conn:
            while True:
                n, first, last, txid = delete_next(conn, work.sel, after, DELETE_BATCH)
                if not n:
                    conn.rollback()
                    return
                after = last
                entry, target = self._batch_entry(action, txid), self._range(work, first, last, n, txid)
                if self._over(conn, action, entry, done + n, planned):
                    return
                self.ledger.write("intent", entry, target)
                conn.commit()
                self.ledger.write("outcome", entry, target, "ok", {"deleted": n})
                self._count("ok", action, n)
                done += n

    def pg_anonymize_rows(self, action: dict[str, Any]) -> None:
        work = self.work(action["store"])
        planned, done, after = int(action["count"]), 0, None
        with work.connect() as conn:
            while True:
                txid = str(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
                rows = select_batch(conn, work.sel, after, BATCH, lock=True, whole=True)
                if not rows:
                    conn.rollback()
                    return
                after = rows[-1].key
                if self._over(conn, action, self._batch_entry(action, txid), done + len(rows), planned):
                    return
                done += self._anonymize_batch(conn, work, action, rows, txid)

    def _over(self, conn: psycopg.Connection, action: dict[str, Any], entry: dict[str, Any], total: int, planned: int) -> bool:
        """Roll back and stop when this batch would take the action past the rows planned."""
        if total <= planned:
            return False
        conn.rollback()
        self.ledger.write("outcome", entry, {"location": self.work(action["store"]).resource, "count": 0}, "failed",
                          f"stopped: this batch would make {total} rows, more than the {planned} planned "
                          "(the table changed since the plan); run retain again to plan afresh")
        self._count("failed", action, 0)
        return True

    def _anonymize_batch(self, conn: psycopg.Connection, work: StoreWork, action: dict[str, Any], rows: list[Row],
                         txid: str) -> int:
        assert work.anonymizer is not None
        judged = judge(work.anonymizer, work.sel, rows)
        entry = self._batch_entry(action, txid)
        if judged.refused is not None:  # left as they are, counted as still past retention
            conn.rollback()
            self.ledger.write("outcome", entry, self._target(work, rows, txid), "skipped", judged.refused)
            self._count("skipped", action, 0)
            return 0
        counts = {"anonymize": len(judged.updates), "suppress": len(judged.suppressed)}
        climbed = {"generalization": judged.generalization} if judged.generalization else {}  # the rung, as S3 and DynamoDB record it
        target = self._target(work, rows, txid, counts=counts, **climbed)
        self.ledger.write("intent", entry, target)
        written = write_updates(conn, work.sel, judged.updates) + delete_rows(conn, work.sel, judged.suppressed)
        return self._finish(conn, action, entry, target, written, len(rows), counts)

    def _finish(self, conn: psycopg.Connection, action: dict[str, Any], entry: dict[str, Any], target: dict[str, Any],
                written: int, expected: int, detail: dict[str, Any]) -> int:
        """Commit when every locked row was written as read; otherwise roll the batch back."""
        if written != expected:
            conn.rollback()
            self.ledger.write("outcome", entry, {**target, "count": 0}, "skipped",
                              f"{expected - written} of {expected} rows changed while locked; the batch was rolled back")
            self._count("skipped", action, 0)
            return 0
        conn.commit()
        self.ledger.write("outcome", entry, target, "ok", detail)
        self._count("ok", action, written)
        return written

    # --- subject erasure ---------------------------------------------------------------

    def pg_erase_rows(self, action: dict[str, Any]) -> None:
        """The subject's rows named by `find`, still theirs and not held, deleted or anonymized in one
        transaction (waiting up to lock_timeout for a writer, not skipping: an erasure is owed now)."""
        work = self.work(action["store"])
        keys = [json.loads(k) for k in action["rows"]]
        args, params = key_params(work.sel, keys, prefix="e")
        names = ", ".join(f"e{i}" for i in range(len(work.sel.pk)))
        listed = f"ROW({names})" if len(work.sel.pk) > 1 else names
        extra = f" AND {work.sel.pk_row} IN (SELECT {listed} FROM unnest({args}) AS e({names}))"
        with work.connect() as conn:
            txid = str(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
            rows = select_batch(conn, work.sel, None, len(keys), wait=True, whole=work.anonymizer is not None,
                                extra=extra, extra_params=params)
            entry = self._batch_entry(action, txid)
            if work.anonymizer is None:
                target = self._target(work, rows, txid)
                self.ledger.write("intent", entry, target)
                self._finish(conn, action, entry, target, delete_rows(conn, work.sel, rows), len(rows), {"deleted": len(rows)})
                return
            judged = judge(work.anonymizer, work.sel, rows)
            counts = {"anonymize": len(judged.updates), "suppress": len(judged.suppressed)}
            target = self._target(work, rows, txid, counts=counts)
            self.ledger.write("intent", entry, target)
            written = write_updates(conn, work.sel, judged.updates) + delete_rows(conn, work.sel, judged.suppressed)
            self._finish(conn, action, entry, target, written, len(rows), counts)

    def pg_drop_partition(self, action: dict[str, Any]) -> None:
        """DROP the partition, once more checking under an exclusive lock that every row in it is due;
        if anything changed (or the user may not drop it), its rows are left to the row deletes."""
        work = self.work(action["store"])
        with work.connect() as conn:
            txid = str(conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0])
            entry = {"action_id": f"{action['action_id']}:{txid}", "action": action["action"], "store": action["store"]}
            target = {"location": work.resource, "object": action["object"], "count": action["count"], "txid": txid}
            partition = action["object"]
            try:
                conn.execute(f"LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE")  # name from the catalog, quoted there
                sel = work.sel
                row = conn.execute(f"SELECT count(*), count(*) FILTER (WHERE {sel.where((DUE,))}) FROM {partition} t",
                                   sel.params).fetchone()
            except psycopg.Error as exc:
                conn.rollback()
                self._fallback(action, entry, target, f"could not lock the partition: {type(exc).__name__}")
                return
            if row[0] != row[1] or row[0] > int(action["count"]):
                conn.rollback()
                self._fallback(action, entry, target, f"the partition changed since the plan ({row[0]} rows, {row[1]} due)")
                return
            self.ledger.write("intent", entry, {**target, "count": row[0]})
            try:
                conn.execute(f"DROP TABLE {partition}")
            except psycopg.errors.InsufficientPrivilege:
                conn.rollback()
                self._fallback(action, entry, target, "not the partition's owner, so it cannot be dropped", intent=True)
                return
            conn.commit()
            self.ledger.write("outcome", entry, {**target, "count": row[0]}, "ok", {"dropped": partition, "rows": row[0]})
            self._count("ok", action, row[0])

    def _fallback(self, action: dict[str, Any], entry: dict[str, Any], target: dict[str, Any], why: str, intent: bool = False) -> None:
        """The partition stays; its due rows are deleted row by row instead (the rows action's allowance grows)."""
        if not intent:
            self.ledger.write("intent", entry, {**target, "count": 0})
        self.ledger.write("outcome", entry, {**target, "count": 0}, "skipped", f"{why}; its due rows are deleted in batches instead")
        self._count("skipped", action, 0)
        self.extra_rows[action["store"]] = self.extra_rows.get(action["store"], 0) + int(action["count"])

    def run_store(self, actions: list[dict[str, Any]]) -> Stats:
        """Partition drops first; rows of a partition that could not be dropped join the row deletes."""
        drops = [a for a in actions if a["action"] == "pg_drop_partition"]
        self.run(drops)
        rest = [a for a in actions if a["action"] != "pg_drop_partition"]
        for action in rest:
            extra = self.extra_rows.pop(action["store"], 0) if action["action"] == "pg_delete_rows" else 0
            action["count"] = int(action["count"]) + extra
        for store, extra in self.extra_rows.items():  # no row action was planned: make one for the partition's rows
            rest.append({"action": "pg_delete_rows", "store": store, "location": "", "count": extra,
                         "action_id": f"fallback-{store}"})
        return self.run(rest)


def apply_planned(work: dict[str, StoreWork], keys: RetentionKeys, ledger, actions: list[dict[str, Any]],
                  stats: Stats | None = None) -> Stats:
    """Run the planned actions of the stores that were planned (read and checked) in this run."""
    known = [a for a in actions if a["store"] in work]
    return PgApplier(keys, ledger, work.__getitem__, stats).run_store(known)
