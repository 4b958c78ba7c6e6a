"""A PostgreSQL table per test (a fresh database on the session's loopback server) beside the moto world."""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from tests.test_retention_world import NOW, World

_names = itertools.count()

CALLS = {
    "description": "Call detail records", "retain": "P30D", "action": "anonymize",
    "anonymize": {"caller": "pseudonymize", "callee": "pseudonymize", "caller_ip": "generalize_ip",
                  "started_at": "truncate_time:hour", "card_number": "mask:4", "duration": "keep", "note": "drop"},
    "basis": "Usage statistics",
}
CONSENT = {"description": "SMS consent", "retain": "P60D", "keep_at_least": "P40D", "action": "delete", "basis": "Proof of consent"}

CALLS_TABLE = """CREATE TABLE public.calls (
    id bigint PRIMARY KEY, started_at timestamptz, caller text, callee text, caller_ip inet,
    card_number text, duration integer NOT NULL DEFAULT 0, note text, channel text)"""
CONSENT_TABLE = """CREATE TABLE public.consent (
    id bigint PRIMARY KEY, created_at timestamptz, account text, method text)"""


@contextmanager
def database(server) -> Iterator[str]:
    """A fresh database; yields its DSN and drops it afterwards."""
    name = f"t{next(_names)}_{datetime.now(UTC).strftime('%H%M%S%f')}"
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.dsn(name)
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


class PgWorld(World):
    """The moto world plus one database; the policy gets the postgres stores `calls-db` and `consent-db`."""

    def __init__(self, tmp_path: Path, monkeypatch, dsn: str, change=None, holds: list[dict[str, Any]] | None = None,
                 calls: dict[str, Any] | None = None, **store: Any):
        monkeypatch.setenv("VIGIL_TEST_DSN", dsn)
        self.dsn = dsn

        def extend(data: dict) -> None:
            data["categories"]["pg_calls"] = {**CALLS, **(calls or {})}
            data["categories"]["pg_consent"] = dict(CONSENT)
            base = {"kind": "postgres", "connection": {"dsn_env": "VIGIL_TEST_DSN"}, "primary_key": ["id"]}
            data["stores"].append({"name": "calls-db", **base, "table": "public.calls", "timestamp_column": "started_at",
                                   "subject_column": "caller", "category": "pg_calls", **store})
            data["stores"].append({"name": "consent-db", **base, "table": "consent", "timestamp_column": "created_at",
                                   "subject_column": "account", "category": "pg_consent"})
            data["holds"] = holds if holds is not None else [{"reason": "Litigation 42", "subjects": ["held-1"]}]
            if change is not None:
                change(data)
        super().__init__(tmp_path, monkeypatch, extend)

    def sql(self, text: str, params: Any = None) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cur = conn.execute(text, params)
            return cur.fetchall() if cur.description else []

    def rows(self, table: str = "calls") -> dict[int, dict[str, Any]]:
        with psycopg.connect(self.dsn, autocommit=True, options="-c TimeZone=UTC") as conn:
            return {r[0]["id"]: r[0] for r in conn.execute(f"SELECT to_jsonb(t) FROM {table} t ORDER BY id")}


def call(id: int, age_days: float, caller: str = "acct-1", ip: str = "203.0.113.7", **extra: Any) -> dict[str, Any]:
    return {"id": id, "started_at": ago(age_days), "caller": caller, "callee": "+15550100", "caller_ip": ip,
            "card_number": "4111111111111111", "duration": 60, "note": "called about the bill", "channel": "web", **extra}


def insert(world: PgWorld, table: str, rows: list[dict[str, Any]]) -> None:
    with psycopg.connect(world.dsn, autocommit=True) as conn:
        for row in rows:
            cols = ", ".join(row)
            conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({', '.join(['%s'] * len(row))})", list(row.values()))
