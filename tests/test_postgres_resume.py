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
from tests.test_retention_world import KEY_B64

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
