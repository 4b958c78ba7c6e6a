"""Subject rights on PostgreSQL tables: find, export and erase reach rows through subject_column,
erase includes rows not yet due, and held rows stay with their reason."""
from __future__ import annotations

import hmac
import json
from pathlib import Path

import pytest
from moto import mock_aws
from vigil.retention.ledger import chain_ok, read_lines

from tests.postgres_world import CALLS_TABLE, CONSENT_TABLE, PgWorld, ago, call, database, insert
from tests.test_retention_world import KEY
from vigil.cli.main import main


@pytest.fixture
def dsn(postgres_server):
    with database(postgres_server) as url:
        yield url


def only_tables(data: dict) -> None:
    data["stores"] = [s for s in data["stores"] if s["kind"] == "postgres"]


def build(tmp_path: Path, monkeypatch, dsn: str) -> PgWorld:
    world = PgWorld(tmp_path, monkeypatch, dsn, change=only_tables)
    world.table("accounts", "account_id")
    world.sql(CALLS_TABLE)
    world.sql(CONSENT_TABLE)
    insert(world, "calls", [call(1, 40), call(2, 3), call(3, 40, caller="acct-2"), call(4, 50, caller="held-1")])
    insert(world, "consent", [{"id": 1, "created_at": ago(90), "account": "acct-1", "method": "sms"},
                              {"id": 2, "created_at": ago(10), "account": "acct-1", "method": "web"},  # keep_at_least P40D
                              {"id": 3, "created_at": ago(90), "account": "acct-2", "method": "sms"}])
    return world


def subject(world: PgWorld, *args: str, out: Path | None = None) -> int:
    return main(["subject", *args, "--policy", str(world.policy_path), *(["--output", str(out)] if out else [])])


def test_export_holds_the_subjects_rows_alone(tmp_path: Path, monkeypatch, dsn: str) -> None:
    with mock_aws():
        world = build(tmp_path, monkeypatch, dsn)
        out = tmp_path / "package"
        assert subject(world, "export", "acct-1", out=out) == 0
        calls = json.loads((out / "calls-db.json").read_text())
        assert calls["kind"] == "postgres" and sorted(r["id"] for r in calls["records"]) == [1, 2]
        consent = json.loads((out / "consent-db.json").read_text())
        assert sorted(r["method"] for r in consent["records"]) == ["sms", "web"]
        text = "".join(p.read_text() for p in out.iterdir())
        assert "acct-2" not in text and "held-1" not in text


def test_erase_deletes_or_anonymizes_every_row_of_the_subject_not_held(tmp_path: Path, monkeypatch, dsn: str, capsys) -> None:
    with mock_aws():
        world = build(tmp_path, monkeypatch, dsn)
        before = world.rows()
        assert subject(world, "erase", "acct-1", out=tmp_path / "dry") == 0
        assert world.rows() == before  # dry run
        out = tmp_path / "erase"
        assert subject(world, "erase", "acct-1", "--apply", out=out) == 0
        report = json.loads((out / "subject-erase.json").read_text())
        assert report["verify"]["status"] == "pass" and "acct-1" not in json.dumps(report)
        calls = world.rows()
        pseudonym = hmac.new(KEY, b"acct-1", "sha256").hexdigest()
        assert calls[1]["caller"] == pseudonym and calls[2]["caller"] == pseudonym  # row 2 was not yet due: erased too
        assert calls[2]["caller_ip"] == "203.0.113.0/24" and calls[2]["note"] is None
        assert calls[3]["caller"] == "acct-2" and calls[4]["caller"] == "held-1"
        assert sorted(world.rows("consent")) == [2, 3]  # row 2 is kept for keep_at_least
        ledger = out / "ledger.jsonl"
        lines = list(read_lines(ledger))
        assert chain_ok(ledger) and all(len(ln["target"]["subject"]) == 64 for ln in lines)
        assert {ln["action"] for ln in lines} == {"pg_erase_rows"} and all(ln.get("outcome", "ok") == "ok" for ln in lines)

        capsys.readouterr()
        assert subject(world, "find", "acct-1", "--json") == 0
        found = json.loads(capsys.readouterr().out)
        stores = {s["store"]: s for s in found["stores"]}
        assert stores["consent-db"]["erase"] == 0 and stores["consent-db"]["held"] == 1
        assert stores["consent-db"]["holds"][0]["reason"].startswith("keep_at_least P40D")
