"""PostgreSQL retention: delete and anonymize N rows (default 1,000,000) with vigil, against plain SQL.

Each measurement gets a fresh table (same rows) on a throwaway local server (initdb + pg_ctl on
127.0.0.1, fsync off for every contender alike):

* delete: vigil's apply (keyset batches of 5,000, FOR UPDATE SKIP LOCKED, ledger intent fsync'd
  before each batch, keyed hashes of the keys) against the plain batched loop
  `DELETE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 5000)`, commit per batch;
* anonymize: vigil's apply (batches of 1,000 read as JSON, transformed in Python, one guarded
  UPDATE FROM unnest per batch) against the same transforms written in SQL with pgcrypto's
  hmac(), batched like the plain loop and as one single UPDATE (the fastest in place; the key
  then travels in the SQL parameters, which is what vigil avoids).

Prints figures; asserts nothing about time. Usage: python bench/postgres_bench.py [--rows N]
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vigil.retention import ledger as ledgers  # noqa: E402
from vigil.retention.decide import Rules  # noqa: E402
from vigil.retention.keys import RetentionKeys  # noqa: E402
from vigil.retention.postgres.apply import apply_planned  # noqa: E402
from vigil.retention.postgres.local_server import LocalPostgres, missing_reason  # noqa: E402
from vigil.retention.postgres.plan import PgSummary, StoreWork, plan_store  # noqa: E402
from vigil.retention.postgres.sql import build  # noqa: E402
from vigil.retention.postgres.table import read_table  # noqa: E402
from vigil.retention.transforms import Anonymizer  # noqa: E402

from vigil.aws import Aws  # noqa: E402
from vigil.policy.models import Category, PostgresStore  # noqa: E402

KEY = os.urandom(32)
AS_OF = datetime.now(UTC)
OLD = AS_OF - timedelta(days=400)
TABLE = """CREATE TABLE calls (id bigint PRIMARY KEY, started_at timestamptz NOT NULL, caller text, callee text,
    caller_ip inet, card_number text, duration integer, note text)"""
FILL = """INSERT INTO calls SELECT i, %s - (i %% 1000) * interval '1 minute', 'acct-' || (i %% 50000), '+1555' || (i %% 9999),
    ('10.' || (i %% 250) || '.' || (i %% 200) || '.' || (i %% 199))::inet, '4111111111' || lpad((i %% 999999)::text, 6, '0'), i %% 600, 'n'
    FROM generate_series(1, %s) i"""
ANONYMIZE = {"caller": "pseudonymize", "callee": "pseudonymize", "caller_ip": "generalize_ip", "started_at": "truncate_time:hour",
             "card_number": "mask:4", "duration": "keep", "note": "drop"}
PGCRYPTO_SET = ("caller = encode(hmac(convert_to(caller, 'UTF8'), %(key)s, 'sha256'), 'hex'), callee = encode(hmac(convert_to(callee, 'UTF8'), %(key)s, 'sha256'), 'hex'), "
                "caller_ip = set_masklen(network(set_masklen(caller_ip, 24)), 24), started_at = date_trunc('hour', started_at), "
                "card_number = repeat('*', greatest(length(card_number) - 4, 0)) || right(card_number, 4), note = NULL")


def fresh(dsn: str, rows: int) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS calls")
        conn.execute(TABLE)
        conn.execute(FILL, (OLD, rows))
        conn.execute("VACUUM ANALYZE calls")


def vigil_run(dsn: str, action: str, tmp: Path) -> tuple[float, float, int]:
    """(plan seconds, apply seconds, rows done) through the same code `vigil retain --apply` runs."""
    os.environ["VIGIL_BENCH_DSN"] = dsn
    category = Category.model_validate({"retain": "P30D", "action": action, **({"anonymize": ANONYMIZE} if action == "anonymize" else {})})
    store = PostgresStore.model_validate({"name": "calls", "kind": "postgres", "connection": {"dsn_env": "VIGIL_BENCH_DSN"},
                                          "table": "calls", "primary_key": ["id"], "timestamp_column": "started_at", "category": "c"})
    keys = RetentionKeys(evidence=os.urandom(32), pseudonym=KEY)
    anonymizer = Anonymizer(category, KEY) if action == "anonymize" else None
    actions: list[dict] = []
    start = time.perf_counter()
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        info = read_table(conn, store)
        assert not isinstance(info, str)
        sel = build(store, info, Rules("calls", category, (), AS_OF, {}))
        summary = PgSummary("calls", "postgres", "c", action, "calls", "us-east-1")
        plan_store(conn, sel, summary, keys, anonymizer, actions.append)
    planned = time.perf_counter() - start
    from vigil.retention.postgres.connect import connect
    work = {"calls": StoreWork(lambda: connect(Aws(), store, "us-east-1")[0], sel, anonymizer, "calls")}
    ledger = ledgers.Ledger(tmp / f"ledger-{action}.jsonl", "bench")
    start = time.perf_counter()
    stats = apply_planned(work, keys, ledger, actions)
    applied = time.perf_counter() - start
    ledger.close()
    assert not stats.failed, stats
    return planned, applied, sum(stats.done.values())


def plain_delete(dsn: str, keyset: bool, cte: bool = False) -> tuple[float, int]:
    """The loop as usually written; with `keyset`, each batch starts after the last key deleted (as
    usually written, `id IN (subquery)` still hash-joins against a scan of the rest of the table in
    every batch); `cte`: vigil's own statement (a locked CTE joined on the key from the same bound),
    with no ledger, no evidence and no plan: what vigil's bookkeeping costs on top."""
    done, last = 0, 0
    cut = AS_OF - timedelta(days=30)
    start = time.perf_counter()
    with psycopg.connect(dsn) as conn:
        while True:
            if keyset:
                if cte:
                    text = ("WITH b AS (SELECT id FROM calls WHERE started_at <= %(cut)s AND id > %(last)s ORDER BY id LIMIT 5000 "
                            "FOR UPDATE SKIP LOCKED) DELETE FROM calls t USING b WHERE t.id = b.id AND t.id > %(last)s RETURNING t.id")
                else:
                    text = ("DELETE FROM calls WHERE id IN (SELECT id FROM calls WHERE started_at <= %(cut)s AND id > %(last)s "
                            "ORDER BY id LIMIT 5000 FOR UPDATE SKIP LOCKED) RETURNING id")
                ids = [r[0] for r in conn.execute(text, {"cut": cut, "last": last})]
                n, last = len(ids), max(ids, default=last)
            else:
                n = conn.execute("DELETE FROM calls WHERE id IN (SELECT id FROM calls WHERE started_at <= %s "
                                 "LIMIT 5000 FOR UPDATE SKIP LOCKED)", (cut,)).rowcount
            conn.commit()
            if not n:
                break
            done += n
    return time.perf_counter() - start, done


def pgcrypto_anonymize(dsn: str, batched: bool) -> tuple[float, int]:
    params = {"key": KEY, "cut": AS_OF - timedelta(days=30)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")  # the bench's server only
    done, last = 0, 0
    start = time.perf_counter()
    with psycopg.connect(dsn, options="-c TimeZone=UTC") as conn:
        if not batched:
            done = conn.execute(f"UPDATE calls SET {PGCRYPTO_SET} WHERE started_at <= %(cut)s", params).rowcount
            conn.commit()
        while batched:
            rows = conn.execute(f"UPDATE calls SET {PGCRYPTO_SET} WHERE id IN (SELECT id FROM calls WHERE started_at <= %(cut)s "
                                f"AND id > %(last)s ORDER BY id LIMIT 1000 FOR UPDATE SKIP LOCKED) RETURNING id",
                                {**params, "last": last}).fetchall()
            conn.commit()
            if not rows:
                break
            done += len(rows)
            last = max(r[0] for r in rows)
    return time.perf_counter() - start, done


def measure_deletes(dsn: str, n: int, tmp: Path) -> None:
    fresh(dsn, n)
    plain_s, plain_n = plain_delete(dsn, keyset=False)
    fresh(dsn, n)
    keyset_s, keyset_n = plain_delete(dsn, keyset=True)
    fresh(dsn, n)
    bounded_s, bounded_n = plain_delete(dsn, keyset=True, cte=True)
    fresh(dsn, n)
    plan_s, apply_s, vigil_n = vigil_run(dsn, "delete", tmp)
    assert plain_n == keyset_n == bounded_n == vigil_n == n, (plain_n, keyset_n, bounded_n, vigil_n)
    print(f"delete    plain batched loop    {plain_s:7.2f} s  {n / plain_s:9,.0f} rows/s")
    print(f"delete    plain keyset loop     {keyset_s:7.2f} s  {n / keyset_s:9,.0f} rows/s")
    print(f"delete    same SQL as vigil     {bounded_s:7.2f} s  {n / bounded_s:9,.0f} rows/s  (its CTE statement, no ledger)")
    print(f"delete    vigil apply           {apply_s:7.2f} s  {n / apply_s:9,.0f} rows/s  (plan {plan_s:.2f} s)"
          f"  ratio {plain_s / apply_s:.2f} of the plain loop, {bounded_s / apply_s:.2f} of the same SQL without ledger "
          f"(plan + apply: {bounded_s / (apply_s + plan_s):.2f})")


def measure_anonymization(dsn: str, n: int, tmp: Path) -> None:
    fresh(dsn, n)
    batch_s, batch_n = pgcrypto_anonymize(dsn, batched=True)
    fresh(dsn, n)
    one_s, one_n = pgcrypto_anonymize(dsn, batched=False)
    fresh(dsn, n)
    plan_s, apply_s, vigil_n = vigil_run(dsn, "anonymize", tmp)
    assert batch_n == one_n == vigil_n == n, (batch_n, one_n, vigil_n)
    print(f"anonymize pgcrypto batched loop {batch_s:7.2f} s  {n / batch_s:9,.0f} rows/s")
    print(f"anonymize pgcrypto one UPDATE   {one_s:7.2f} s  {n / one_s:9,.0f} rows/s")
    print(f"anonymize vigil apply           {apply_s:7.2f} s  {n / apply_s:9,.0f} rows/s  (plan {plan_s:.2f} s)"
          f"  ratio {batch_s / apply_s:.2f} of the batched loop, {one_s / apply_s:.2f} of one UPDATE")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--only", choices=["delete", "anonymize"], help="measure one of the two")
    args = parser.parse_args()
    reason = missing_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # unwind, so the throwaway server is stopped
    with LocalPostgres({"shared_buffers": "256MB", "max_wal_size": "4GB"}) as server, tempfile.TemporaryDirectory() as tmp:
        dsn = server.dsn()
        n = args.rows
        print(f"{n:,} rows, PostgreSQL {psycopg.connect(dsn).info.server_version}, psycopg {psycopg.__version__}")
        if args.only != "anonymize":
            measure_deletes(dsn, n, Path(tmp))
        if args.only != "delete":
            measure_anonymization(dsn, n, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
