"""Retention for PostgreSQL stores (kind `postgres`): plan, apply, verify and resume for tables.

`PostgresRetention` is what the engine calls, once per run: `plan` per store (a PgSummary and
actions for the spool; `work` keeps what apply.apply_planned needs), `verify` (RET-02) and
`resolve` for ledger intents a killed run left open. This module reads only: the writing code
is in apply.py, so `vigil check` (RET-02) is not granted what only `vigil retain` does. Vigil creates nothing in the database: its state is
the ledger; the guard against anonymizing twice is the rows' own shape (see sql.py).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from vigil.aws import Aws
from vigil.policy import Duration, Policy
from vigil.policy.models import PostgresStore

from ..keys import RetentionKeys
from ..scan import action_of, anonymizer_for, store_rules
from .backups import rds_backups
from .connect import ConnectionProblem, Target, connect, params
from .plan import PgSummary, StoreWork, count_states, plan_store, tally
from .sql import Selection, build
from .table import problems, read_table

__all__ = ["PgSummary", "PostgresRetention", "is_postgres_action"]


def is_postgres_action(action: dict[str, Any]) -> bool:
    return str(action.get("action", "")).startswith("pg_")


@dataclass
class Opened:
    """A store's table, read and checked: its selection, or why it cannot be worked on."""

    summary: PgSummary
    target: Target | None = None
    sel: Selection | None = None


@dataclass
class PostgresRetention:
    aws: Aws
    policy: Policy
    keys: RetentionKeys
    as_of: datetime
    closed: dict[str, datetime] = field(default_factory=dict)
    subjects_error: str | None = None
    work: dict[str, StoreWork] = field(default_factory=dict)  # planned stores, for apply

    def connector(self, store: PostgresStore) -> Callable[[], psycopg.Connection]:
        return lambda: connect(self.aws, store, self.policy.regions.primary)[0]

    def open(self, store: PostgresStore, grace: Duration | None = None,
             use: Callable[[psycopg.Connection, Selection, PgSummary], None] | None = None) -> Opened:
        """Connect, read the table, check it against the category and build the selection; `use` runs
        with the open connection. Every failure is an error on the summary, never an exception."""
        category = self.policy.category_of(store)
        try:
            _, target = params(self.aws, store, self.policy.regions.primary)
            resource, region = target.resource, target.region
        except ConnectionProblem as exc:
            target, resource, region = None, f"postgres:{store.name}", self.policy.regions.primary
            problem: str | None = str(exc)
        else:
            problem = self.subjects_error if category.after else None
        summary = PgSummary(store.name, "postgres", store.category, action_of(category), resource, region)
        opened = Opened(summary, target)
        if problem:
            summary.error(resource, problem)
            return opened
        try:
            with connect(self.aws, store, self.policy.regions.primary)[0] as conn:
                info = read_table(conn, store)
                if isinstance(info, str):
                    summary.error(resource, info)
                    return opened
                issues = problems(info, store, category)
                for issue in issues:
                    summary.error(resource, issue, 0)
                if issues:
                    summary.notes.append("nothing in this table is changed until the errors above are fixed")
                    return opened
                opened.sel = build(store, info, store_rules(self.policy, store, self.as_of, self.closed), grace)
                if use is not None:
                    use(conn, opened.sel, summary)
                conn.rollback()
        except ConnectionProblem as exc:
            summary.error(resource, str(exc))
        except psycopg.Error as exc:
            summary.error(resource, f"{type(exc).__name__}: {_first_line(exc)}")
        return opened

    def plan(self, store: PostgresStore, emit: Callable[[dict[str, Any]], None]) -> PgSummary:
        anonymizer = anonymizer_for(self.policy, store, self.keys)

        def use(conn: psycopg.Connection, sel: Selection, summary: PgSummary) -> None:
            plan_store(conn, sel, summary, self.keys, anonymizer, emit)

        opened = self.open(store, use=use)
        if opened.sel is not None:
            self.work[store.name] = StoreWork(self.connector(store), opened.sel, anonymizer, opened.summary.resource)
        target = opened.target
        opened.summary.backups = rds_backups(self.aws, opened.summary.region, target.instance if target else None, self.as_of)
        return opened.summary

    def verify(self, store: PostgresStore, grace: Duration | None = None) -> PgSummary:
        """What is still past retention (+ grace): the same selection, counted; nothing is changed."""
        verb = "anonymize" if self.policy.category_of(store).action == "anonymize" else "delete"

        def use(conn: psycopg.Connection, sel: Selection, summary: PgSummary) -> None:
            tally(summary, sel, count_states(conn, sel), verb)

        return self.open(store, grace=grace, use=use).summary

    def resolve(self, ledger, intents: dict[str, dict[str, Any]]) -> int:
        """Write the missing outcome of every open postgres intent (and take it out of `intents`):
        the server says whether its transaction committed. Unknown ones stay open for a later run."""
        stores = {s.name: s for s in self.policy.postgres_stores}
        done = 0
        for action_id, intent in list(intents.items()):
            target = intent.get("target") or {}
            if not is_postgres_action(intent):
                continue
            intents.pop(action_id)
            store = stores.get(intent.get("store", ""))
            if store is None or "txid" not in target:
                continue
            try:
                with connect(self.aws, store, self.policy.regions.primary, autocommit=True)[0] as conn:
                    status = wait_status(conn, str(target["txid"]))
            except (ConnectionProblem, psycopg.Error):
                continue  # cannot ask now: the intent stays open
            if status is None:
                continue
            if status == "committed":
                ledger.write("outcome", intent, target, "ok", {"resumed": True, "note": "committed before the interruption"})
            else:
                ledger.write("outcome", intent, {**target, "count": 0}, "skipped",
                             {"resumed": True, "note": "rolled back by the interruption; still-due rows are planned again"})
            done += 1
        return done


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def wait_status(conn: psycopg.Connection, txid: str, patience: float = 10.0) -> str | None:
    """committed | aborted | None (unknown: too old, or still in progress after `patience` seconds)."""
    deadline = time.monotonic() + patience
    while True:
        status = conn.execute("SELECT pg_xact_status(%s::xid8)", (txid,)).fetchone()[0]
        if status != "in progress":
            return status
        if time.monotonic() > deadline:
            return None
        time.sleep(0.2)
