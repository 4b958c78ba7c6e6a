"""SIGKILL in the middle of a PostgreSQL batch: the next run asks the server what became of the
noted transaction, writes the missing outcome, and finishes; nothing lost, nothing done twice."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from vigil.retention.ledger import chain_ok, read_lines

from tests.conftest import ROOT
from tests.postgres_world import CALLS_TABLE, CONSENT_TABLE, PgWorld, ago, database
from tests.test_retention_world import KEY_B64, NOW

ROWS = 12000  # three delete batches (5,000 each), twelve anonymize batches (1,000 each)
STALL = 7000  # the row whose trigger stalls its batch until the kill


@pytest.fixture
def dsn(postgres_server):
    with database(postgres_server) as url:
        yield url


def _env(dsn: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", VIGIL_PSEUDONYM_KEY=KEY_B64,
               VIGIL_TEST_DSN=dsn, PYTHONPATH=str(ROOT))
    return env


def _seed(world: PgWorld, store: str) -> str:
    dbname = world.dsn.split("dbname=")[1].split()[0]
    world.sql(f"ALTER DATABASE {dbname} SET client_connection_check_interval = '50ms'")  # a killed client's batch aborts at once
    if store == "consent-db":
        world.sql(CONSENT_TABLE)
        world.sql("INSERT INTO consent SELECT i, %s, 'acct-' || (i %% 50), 'sms' FROM generate_series(1, %s) i", (ago(100), ROWS))
        event, table = "DELETE", "consent"
    else:
        world.sql(CALLS_TABLE)
        world.sql("INSERT INTO calls SELECT i, %s, 'acct-' || (i %% 50), '+1555', '203.0.113.7', '4111111111111111', 60, 'n', 'web' "
                  "FROM generate_series(1, %s) i", (ago(100), ROWS))
        event, table = "UPDATE", "calls"
    world.sql("CREATE FUNCTION stall() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(120); "
              "RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END; END $$")
    # Deferred to COMMIT: the batch has run and its intent is on disk when the kill comes.
    world.sql(f"CREATE CONSTRAINT TRIGGER stall AFTER {event} ON {table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
              f"WHEN (OLD.id = {STALL}) EXECUTE FUNCTION stall()")
    return table


@pytest.mark.parametrize("store", ["consent-db", "calls-db"])
def test_sigkill_mid_batch_then_resume(tmp_path: Path, monkeypatch, dsn: str, store: str, moto_server: str) -> None:
    world = PgWorld(tmp_path, monkeypatch, dsn)
    table = _seed(world, store)
    out = tmp_path / "evidence"
    command = [sys.executable, "-m", "vigil", "retain", "--apply", "--policy", str(world.policy_path), "--output", str(out),
               "--store", store, "--endpoint-url", moto_server]
    process = subprocess.Popen(command, env=_env(dsn), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ledger = out / "ledger.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        stalled = world.sql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'")[0][0]
        if stalled and ledger.exists():
            break
        time.sleep(0.05)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read().decode()[-2000:]}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = list(read_lines(ledger))
    open_intents = {ln["action_id"] for ln in killed if ln["phase"] == "intent"} - {ln["action_id"] for ln in killed if ln["phase"] == "outcome"}
    assert len(open_intents) == 1, killed
    done_before = sum(ln["target"]["count"] for ln in killed if ln["phase"] == "outcome" and ln["outcome"] == "ok")
    assert 0 < done_before < ROWS
    world.sql(f"DROP TRIGGER stall ON {table}")  # waits for the killed batch to roll back

    resumed = subprocess.run(command, env=_env(dsn), capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    lines = list(read_lines(ledger))
    assert lines[:len(killed)] == killed and chain_ok(ledger)
    outcomes = [ln for ln in lines if ln["phase"] == "outcome"]
    closing = [ln for ln in outcomes if ln["action_id"] in open_intents]
    assert len(closing) == 1 and closing[0]["outcome"] == "skipped" and closing[0]["detail"]["resumed"]
    intents = [ln["action_id"] for ln in lines if ln["phase"] == "intent"]
    assert sorted(intents) == sorted(ln["action_id"] for ln in outcomes if ln["action_id"] in set(intents))  # one outcome each
    assert sum(ln["target"]["count"] for ln in outcomes if ln["outcome"] == "ok") == ROWS  # every row once, none twice
    if table == "consent":
        assert world.sql("SELECT count(*) FROM consent")[0][0] == 0
    else:
        assert world.sql("SELECT count(*) FROM calls WHERE caller !~ '^[0-9a-f]{64}$' OR note IS NOT NULL")[0][0] == 0
        assert world.sql("SELECT count(*) FROM calls")[0][0] == ROWS


def test_open_intents_are_closed_by_what_the_server_says_of_their_transactions(tmp_path: Path, monkeypatch, dsn: str) -> None:
    """Committed -> ok, rolled back -> skipped, each exactly once; an intent of another kind is left to its own resolver."""
    import psycopg
    from moto import mock_aws
    from vigil.retention.keys import load_keys
    from vigil.retention.ledger import Ledger, dangling
    from vigil.retention.postgres import PostgresRetention

    from vigil.policy import load_policy

    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        world.sql(CONSENT_TABLE)
        txids = {}
        for name, end in (("committed", "commit"), ("aborted", "rollback")):
            with psycopg.connect(dsn) as conn:
                txids[name] = conn.execute("SELECT pg_current_xact_id()::text").fetchone()[0]
                conn.execute("INSERT INTO consent VALUES (%s, now(), 'a', 'sms')", (len(txids),))
                getattr(conn, end)()
        path = tmp_path / "ledger.jsonl"
        ledger = Ledger(path, "killed")
        for txid in txids.values():
            ledger.write("intent", {"action_id": f"a:{txid}", "action": "pg_delete_rows", "store": "consent-db"},
                         {"location": "x", "count": 1, "txid": txid})
        ledger.write("intent", {"action_id": "s3", "action": "delete_versions", "store": "billing"}, {"versions": [], "count": 0})
        ledger.close()
        policy = load_policy(world.policy_path)
        intents = dangling(path)
        ledger = Ledger(path, "resumed")
        assert PostgresRetention(None, policy, load_keys(policy), NOW).resolve(ledger, intents) == 2
        ledger.close()
        assert list(intents) == ["s3"]
        outcomes = {ln["action_id"]: ln for ln in read_lines(path) if ln["phase"] == "outcome"}
        assert outcomes[f"a:{txids['committed']}"]["outcome"] == "ok"
        assert outcomes[f"a:{txids['aborted']}"]["outcome"] == "skipped"
        assert outcomes[f"a:{txids['aborted']}"]["target"]["count"] == 0 and chain_ok(path)
