"""PostgreSQL tables: the subject's rows, found by `subject_column`, and their erasure.

Every row of the subject is found (whatever its age), with the reason it must stay when it
is held (legal hold, keep_at_least counted from the row's timestamp). Erase deletes the
rows, or anonymizes them where the category anonymizes, through retention's PostgreSQL
applier: one transaction per batch, ledger intent (with the transaction id) before and
outcome after, so a crash is resolved by asking the server, as for retention.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg

from vigil.aws import Aws
from vigil.policy import Policy
from vigil.policy.models import PostgresStore
from vigil.retention.apply import Stats
from vigil.retention.keys import RetentionKeys
from vigil.retention.postgres import PostgresRetention
from vigil.retention.postgres.apply import PgApplier, StoreWork
from vigil.retention.postgres.backups import rds_backups
from vigil.retention.postgres.connect import ConnectionProblem, connect, params
from vigil.retention.postgres.rows import BATCH, key_text
from vigil.retention.postgres.sql import DUE, Selection, build, q
from vigil.retention.postgres.table import problems, read_table
from vigil.retention.transforms import parse_time

from .decide import store_rules, subject_anonymizer
from .model import BackupCopy, Copy, Found, StoreFound


def _selection(aws: Aws, policy: Policy, store: PostgresStore, subject: str, as_of: datetime,
               conn: psycopg.Connection) -> Selection | str:
    info = read_table(conn, store)
    if isinstance(info, str):
        return info
    category = policy.category_of(store)
    issues = problems(info, store, category)
    if issues:
        return "; ".join(issues)
    return build(store, info, store_rules(policy, store.name, category, as_of), only_subject=subject)


def find_rows(finder, store: PostgresStore, found: StoreFound) -> None:
    if store.subject_column is None:
        found.note = "cannot tell whose rows these are: give the store 'subject_column'"
        return
    try:
        _, target = params(finder.aws, store, finder.policy.regions.primary)
        found.resource = target.resource
        with connect(finder.aws, store, finder.policy.regions.primary)[0] as conn:
            sel = _selection(finder.aws, finder.policy, store, finder.subject, finder.as_of, conn)
            if isinstance(sel, str):
                found.errors.append(sel)
                return
            _collect(conn, sel, finder, found, target.region)
    except ConnectionProblem as exc:
        found.errors.append(str(exc))
    except psycopg.Error as exc:
        found.errors.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}")


def _collect(conn: psycopg.Connection, sel: Selection, finder, found: StoreFound, region: str) -> None:
    """Every row of the subject, with its state under the erasure selection (due, held, already anonymized)."""
    ts = sel.store.timestamp_column
    minimum = sel.category.keep_at_least
    n = len(sel.pk)
    keys = ", ".join(f"t.{c}" for c in sel.pk)
    text = (f"SELECT {keys}, to_jsonb(t), {sel.state} FROM {sel.table} t "
            f"WHERE t.{q(str(sel.store.subject_column))}::text = %(subject)s ORDER BY {keys}")
    for record in conn.execute(text, sel.params):
        key, fields, state = key_text([None if v is None else str(v) for v in record[:n]]), record[n], record[n + 1]
        found.scanned += 1
        size = len(json.dumps(fields, default=str))
        copy = Copy("row", sel.info.qualified, region, key, records=1, bytes=size, whole=sel.category.action != "anonymize")
        if state == "hold:keep":
            created = parse_time(fields.get(ts)) if ts else None
            until = minimum.after(created).date() if minimum is not None and created is not None else None
            reason = f"{sel.keep_reason}: {sel.category.basis}" if sel.category.basis else str(sel.keep_reason)
            copy.held.append((reason, until, 1, size))
        elif state.startswith("hold:"):
            reason, until = sel.holds[int(state.split(":")[1])]
            copy.held.append((reason, until, 1, size))
        elif state == DUE:
            copy.erase = 1
        if finder.export:
            copy.data = [fields]
        found.copies.append(copy)


def erase_actions(store: StoreFound) -> list[dict[str, Any]]:
    """The subject's due rows of one table, BATCH keys to an action."""
    keys = [c.key for c in store.copies if c.kind == "row" and c.erase]
    out = []
    for start in range(0, len(keys), BATCH):
        part = keys[start:start + BATCH]
        out.append({"action": "pg_erase_rows", "store": store.store, "location": store.resource, "rows": part,
                    "count": len(part), "items": part})
    return out


def apply_erase(aws: Aws, policy: Policy, keys: RetentionKeys, subject: str, as_of: datetime, ledger,
                actions: list[dict[str, Any]], stats: Stats) -> Stats:
    stores = {s.name: s for s in policy.postgres_stores}
    work: dict[str, StoreWork] = {}
    for name in {a["store"] for a in actions}:
        store = stores[name]
        with connect(aws, store, policy.regions.primary)[0] as conn:
            sel = _selection(aws, policy, store, subject, as_of, conn)
        if isinstance(sel, str):
            continue
        category = policy.category_of(store)
        work[name] = StoreWork(PostgresRetention(aws, policy, keys, as_of).connector(store), sel,
                               subject_anonymizer(category, keys.pseudonym), actions[0]["location"])
    return PgApplier(keys, ledger, work.__getitem__, stats).run([a for a in actions if a["store"] in work])


def rds_backup_copies(aws: Aws, policy: Policy, found: Found, as_of: datetime) -> list[BackupCopy]:
    """For each table that holds the subject's rows on an RDS instance: automated backups and snapshots keep them."""
    out = []
    stores = {s.name: s for s in policy.postgres_stores}
    for store_found in found.stores:
        store = stores.get(store_found.store)
        if store is None or not store_found.copies:
            continue
        instance = store.connection.rds_instance
        if instance is None:  # backups vigil cannot see are said in the retention plan, not guessed at here
            continue
        region = store.connection.region or policy.regions.primary
        said = rds_backups(aws, region, instance, as_of)
        until = datetime.fromisoformat(said["until"]).date() if said.get("until") else None
        out.append(BackupCopy(f"RDS automated backups of {instance}", region, until, said.get("note", "")))
        for snap in said.get("snapshots", []):
            if snap["type"] == "manual":
                out.append(BackupCopy(f"manual RDS snapshot of {instance} taken {snap['created']}", region, None,
                                      f"{snap['age_days']} days old; kept until deleted by hand"))
    return out
