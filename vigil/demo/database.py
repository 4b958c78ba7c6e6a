"""The demo's PostgreSQL store: a throwaway server on 127.0.0.1 with a table of fake call records.

Added when PostgreSQL's server binaries are installed (Debian: `apt-get install postgresql`);
otherwise the demo says why it left the store out and runs without it. The server lives in
a temporary folder for the length of the demo and is stopped at the end.
"""
from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import psycopg

from vigil.retention.postgres.local_server import LocalPostgres, missing_reason

DSN_ENV = "VIGIL_DEMO_DSN"
STORE = f"""  # Added by `vigil demo`: a PostgreSQL table on a throwaway local server (connection by DSN).
  - name: call-history-db
    kind: postgres
    connection: {{dsn_env: {DSN_ENV}}}
    table: public.call_records
    primary_key: [id]
    timestamp_column: started_at
    subject_column: caller
    category: call_history
"""
TABLE = """CREATE TABLE public.call_records (id bigint PRIMARY KEY, started_at timestamptz NOT NULL, caller text NOT NULL,
    callee text, caller_ip inet, card_number text, duration integer)"""


def with_store(policy_text: str) -> str:
    """The policy with the demo's table appended to its stores (the last list of the repository's policy)."""
    return policy_text.rstrip("\n") + "\n" + STORE


@contextmanager
def demo_database(now: datetime, subjects: int, say: Callable[[str], None], seed: int = 7) -> Iterator[bool]:
    """Yields whether the PostgreSQL store is part of this demo (its DSN is then in $VIGIL_DEMO_DSN)."""
    reason = missing_reason()
    if reason:
        say(f"PostgreSQL store left out of this demo: {reason}")
        yield False
        return
    rng = random.Random(seed)
    try:
        server = LocalPostgres().start()
    except Exception as exc:  # a server that will not start leaves the store out, said
        say(f"PostgreSQL store left out of this demo: the local server did not start ({type(exc).__name__})")
        yield False
        return
    try:
        rows = [(i, now - timedelta(days=rng.uniform(0, 500), seconds=rng.randrange(86400)), f"ACC-{rng.randrange(1, subjects + 1):05d}",
                 f"+1555{rng.randrange(10**6):06d}", f"198.51.100.{rng.randrange(1, 255)}", f"4111{rng.randrange(10**12):012d}",
                 rng.randrange(5, 3600)) for i in range(1, 2001)]
        with psycopg.connect(server.dsn(), autocommit=True) as conn:
            conn.execute(TABLE)
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO public.call_records VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
        os.environ[DSN_ENV] = server.dsn()
        say(f"PostgreSQL: a throwaway server on 127.0.0.1:{server.port}, table public.call_records "
            f"({len(rows)} fake call records, store call-history-db)")
        yield True
    finally:
        os.environ.pop(DSN_ENV, None)
        server.stop()
