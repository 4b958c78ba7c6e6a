"""PostgreSQL stores while applications write: locked rows are skipped (and reported), rows changed
meanwhile are judged as they are now, and rows the plan did not foresee stop the action."""
from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from moto import mock_aws
from vigil.retention.ledger import read_lines

from tests.postgres_world import CONSENT_TABLE, PgWorld, ago, database
from tests.test_retention_world import store_plan


@pytest.fixture
def dsn(postgres_server):
    with database(postgres_server) as url:
        yield url


def seed(world: PgWorld, n: int) -> None:
    world.sql(CONSENT_TABLE)
    world.sql("INSERT INTO consent SELECT i, %s, 'acct-' || i, 'sms' FROM generate_series(1, %s) i", (ago(100), n))


def test_rows_locked_by_a_writer_are_skipped_then_judged_as_changed(tmp_path: Path, monkeypatch, dsn: str) -> None:
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        seed(world, 20)
        with psycopg.connect(dsn) as writer:  # an application transaction, open during the whole apply
            writer.execute("SELECT * FROM consent WHERE id IN (3, 4) FOR UPDATE")
            code, plan, _ = world.retain("--apply", "--store", "consent-db")
            summary = store_plan(plan, "consent-db")
            assert summary["counts"]["delete"] == 20
            assert summary["verify"] == {"status": "fail", "remaining": 2} and code == 1  # said, not hidden
            assert sorted(world.rows("consent")) == [3, 4]
            writer.execute("UPDATE consent SET created_at = now() WHERE id = 3")  # the writer renews row 3
            writer.commit()
        code, plan, _ = world.retain("--apply", "--store", "consent-db")
        assert code == 0 and store_plan(plan, "consent-db")["verify"]["status"] == "pass"
        assert sorted(world.rows("consent")) == [3]


def test_a_batch_beyond_the_planned_rows_stops_the_action(tmp_path: Path, monkeypatch, dsn: str) -> None:
    """Old rows that appear during apply (a backfill) are not deleted unplanned: the action stops."""
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        seed(world, 6000)
        world.sql("CREATE FUNCTION backfill() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                  "IF NOT EXISTS (SELECT 1 FROM consent WHERE id > 100000) THEN "
                  "INSERT INTO consent SELECT i, now() - interval '1 year', 'late', 'sms' FROM generate_series(100001, 100010) i; "
                  "END IF; RETURN NULL; END $$")
        world.sql("CREATE TRIGGER backfill AFTER DELETE ON consent FOR EACH STATEMENT EXECUTE FUNCTION backfill()")
        code, plan, out = world.retain("--apply", "--store", "consent-db")
        assert code == 1
        failed = [ln for ln in read_lines(out / "ledger.jsonl") if ln.get("outcome") == "failed"]
        assert len(failed) == 1 and "more than the 6000 planned" in failed[0]["detail"]
        assert world.sql("SELECT count(*) FROM consent")[0][0] > 0
        world.sql("DROP TRIGGER backfill ON consent")
        code, plan, _ = world.retain("--apply", "--store", "consent-db")
        assert code == 0 and world.sql("SELECT count(*) FROM consent")[0][0] == 0
