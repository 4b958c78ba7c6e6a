"""PostgreSQL stores against a real server on loopback: plan, delete, anonymize, holds, as-of, idempotence."""
from __future__ import annotations

import hmac
from pathlib import Path

import pytest
from moto import mock_aws
from vigil.retention.ledger import chain_ok, read_lines

from tests.postgres_world import CALLS_TABLE, CONSENT_TABLE, PgWorld, ago, call, database, insert
from tests.test_retention_world import KEY, store_plan


@pytest.fixture
def dsn(postgres_server):
    with database(postgres_server) as url:
        yield url


def consent_rows(world: PgWorld) -> None:
    world.sql(CONSENT_TABLE)
    insert(world, "consent", [
        {"id": 1, "created_at": ago(90), "account": "acct-1", "method": "sms"},     # due
        {"id": 2, "created_at": ago(200), "account": "acct-2", "method": "web"},    # due
        {"id": 3, "created_at": ago(10), "account": "acct-1", "method": "sms"},     # young
        {"id": 4, "created_at": ago(400), "account": "held-1", "method": "sms"},    # legal hold
        {"id": 5, "created_at": None, "account": "acct-3", "method": "sms"},        # cannot be aged
    ])


def test_dry_run_counts_in_sql_and_changes_nothing(tmp_path: Path, monkeypatch, dsn: str) -> None:
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        consent_rows(world)
        before = world.rows("consent")
        code, plan, _ = world.retain("--store", "consent-db")
        summary = store_plan(plan, "consent-db")
        assert summary["kind"] == "postgres" and summary["resource"].endswith("#public.consent")
        assert {k: summary["counts"][k] for k in ("delete", "keep", "held", "error")} == {"delete": 2, "keep": 1, "held": 1, "error": 1}
        assert summary["holds"] == [{"reason": "legal hold: Litigation 42", "until": None, "count": 1}]
        assert "no rds_instance" in summary["postgres"]["backups"]["note"]
        assert code == 1  # a row that cannot be aged is an error
        assert world.rows("consent") == before


def test_delete_apply_keeps_held_and_young_rows_and_a_second_run_changes_nothing(tmp_path: Path, monkeypatch, dsn: str) -> None:
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        consent_rows(world)
        world.sql("DELETE FROM consent WHERE id = 5")
        code, plan, out = world.retain("--apply", "--store", "consent-db")
        summary = store_plan(plan, "consent-db")
        assert code == 0, summary
        assert summary["verify"] == {"status": "pass", "remaining": 0}
        assert sorted(world.rows("consent")) == [3, 4]
        lines = list(read_lines(out / "ledger.jsonl"))
        assert chain_ok(out / "ledger.jsonl")
        intents = [ln for ln in lines if ln["phase"] == "intent"]
        outcomes = [ln for ln in lines if ln["phase"] == "outcome"]
        assert len(intents) == len(outcomes) == 1 and outcomes[0]["outcome"] == "ok" and outcomes[0]["target"]["count"] == 2
        assert "acct-1" not in (out / "ledger.jsonl").read_text()  # keyed hashes only
        target = intents[0]["target"]
        assert len(target["first"]) == len(target["last"]) == 64 and target["txid"].isdigit()  # the batch's key range, hashed

        code, plan, out2 = world.retain("--apply", "--store", "consent-db")
        assert code == 0 and store_plan(plan, "consent-db")["counts"]["delete"] == 0
        assert sorted(world.rows("consent")) == [3, 4]


def test_keep_at_least_holds_rows_past_retention_by_their_creation(tmp_path: Path, monkeypatch, dsn: str) -> None:
    """keep_at_least counts from the row's own timestamp; as-of moves every cut-off."""
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        consent_rows(world)
        world.sql("DELETE FROM consent WHERE id = 5")
        future = (ago(-30)).date().isoformat()  # 30 days on: row 3 (10 days old) is 40, still young
        code, plan, _ = world.retain("--store", "consent-db", "--as-of", future)
        assert store_plan(plan, "consent-db")["counts"]["delete"] == 2
        past = (ago(20)).date().isoformat()  # 20 days ago: row 1 (90 days old) was 70, row 2 was 180
        code, plan, _ = world.retain("--store", "consent-db", "--as-of", past)
        assert store_plan(plan, "consent-db")["counts"]["delete"] == 2
        world.sql("UPDATE consent SET created_at = created_at - interval '100 days'")  # a future --as-of cannot apply: age the rows
        code, plan, _ = world.retain("--apply", "--store", "consent-db")
        assert code == 0
        assert sorted(world.rows("consent")) == [4]  # only the held row is left


def test_every_transform_matches_the_s3_path_in_utc_whatever_the_server_timezone(tmp_path: Path, monkeypatch, dsn: str) -> None:
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        world.sql(CALLS_TABLE)
        world.sql("ALTER DATABASE " + dsn.split("dbname=")[1].split()[0] + " SET TimeZone = 'Pacific/Chatham'")
        insert(world, "calls", [call(1, 40, started_at=ago(40).replace(hour=23, minute=59, second=58)),
                                call(2, 45, caller="acct-2", ip="2001:db8:12:34::1"),
                                call(3, 5), call(4, 50, caller="held-1"), call(5, 60, card_number="12", note=None)])
        code, plan, out = world.retain("--apply", "--store", "calls-db")
        summary = store_plan(plan, "calls-db")
        assert code == 0, summary
        assert {k: summary["counts"][k] for k in ("anonymize", "keep", "held")} == {"anonymize": 3, "keep": 1, "held": 1}
        assert summary["unnamed_fields"] == {"channel": 3}
        rows = world.rows()
        one = rows[1]
        assert one["caller"] == hmac.new(KEY, b"acct-1", "sha256").hexdigest()
        assert one["callee"] == hmac.new(KEY, b"+15550100", "sha256").hexdigest()
        assert one["caller_ip"] == "203.0.113.0/24"
        assert one["started_at"] == ago(40).replace(hour=23, minute=0, second=0).strftime("%Y-%m-%dT%H:%M:%S+00:00")
        assert one["card_number"] == "************1111" and one["duration"] == 60
        assert one["note"] is None and one["channel"] is None
        assert rows[2]["caller_ip"] == "2001:db8:12::/48"
        assert rows[5]["card_number"] == "12"
        assert rows[3]["caller"] == "acct-1" and rows[4]["caller"] == "held-1"  # young, held: untouched
        assert summary["verify"] == {"status": "pass", "remaining": 0}

        before = world.rows()
        code, plan, _ = world.retain("--apply", "--store", "calls-db")
        assert code == 0 and store_plan(plan, "calls-db")["counts"]["anonymize"] == 0
        assert world.rows() == before  # nothing anonymized twice


def test_hmac_key_never_reaches_the_server(tmp_path: Path, monkeypatch, dsn: str, postgres_server) -> None:
    import base64
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        world.sql(CALLS_TABLE)
        insert(world, "calls", [call(i, 40) for i in range(1, 6)])
        code, _, _ = world.retain("--apply", "--store", "calls-db")
        assert code == 0
        log = postgres_server.server_log()
        assert "UPDATE" in log  # statements are logged, so absence below means something
        for form in (KEY.hex(), base64.b64encode(KEY).decode(), KEY.hex().upper()):
            assert form not in log


def test_k_anonymity_suppresses_rows_alone_in_their_class(tmp_path: Path, monkeypatch, dsn: str) -> None:
    calls = {"verify": {"quasi_identifiers": ["caller_ip"], "k": 2, "max_suppression": 0.5}}
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn, calls=calls)
        world.sql(CALLS_TABLE)
        insert(world, "calls", [call(1, 40, ip="203.0.113.7"), call(2, 41, ip="203.0.113.9"), call(3, 42, ip="198.51.100.1")])
        code, plan, _ = world.retain("--store", "calls-db")
        summary = store_plan(plan, "calls-db")
        assert (summary["counts"]["anonymize"], summary["counts"]["suppress"]) == (2, 1)
        code, plan, _ = world.retain("--apply", "--store", "calls-db")
        assert code == 0, store_plan(plan, "calls-db")
        assert sorted(world.rows()) == [1, 2]


def test_k_anonymity_refuses_a_batch_over_max_suppression(tmp_path: Path, monkeypatch, dsn: str) -> None:
    calls = {"verify": {"quasi_identifiers": ["caller_ip"], "k": 2, "max_suppression": 0.1}}
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn, calls=calls)
        world.sql(CALLS_TABLE)
        insert(world, "calls", [call(1, 40, ip="203.0.113.7"), call(2, 41, ip="198.51.100.9")])
        before = world.rows()
        code, plan, _ = world.retain("--apply", "--store", "calls-db")
        summary = store_plan(plan, "calls-db")
        assert code == 1 and summary["counts"]["error"] == 2 and summary["verify"]["status"] == "fail"
        assert world.rows() == before


def test_not_null_unnamed_column_is_an_error_before_anything_changes(tmp_path: Path, monkeypatch, dsn: str) -> None:
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        world.sql(CALLS_TABLE.replace("channel text", "channel text NOT NULL DEFAULT 'web'"))
        insert(world, "calls", [call(1, 40), call(2, 50)])
        before = world.rows()
        code, plan, out = world.retain("--apply", "--store", "calls-db")
        summary = store_plan(plan, "calls-db")
        assert code == 1
        assert any("'channel' is NOT NULL and not named" in e["reason"] for e in summary["errors"])
        assert world.rows() == before
        assert not [ln for ln in read_lines(out / "ledger.jsonl") if ln["phase"] == "intent"] if (out / "ledger.jsonl").exists() else True


PARTITIONED = """CREATE TABLE public.consent (id bigint, created_at timestamptz NOT NULL, account text, method text,
    PRIMARY KEY (id, created_at)) PARTITION BY RANGE (created_at)"""


def test_a_partition_wholly_past_retention_is_dropped_not_deleted_row_by_row(tmp_path: Path, monkeypatch, dsn: str) -> None:
    def composite(data: dict) -> None:
        data["stores"][-1]["primary_key"] = ["id", "created_at"]
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn, change=composite)
        world.sql(PARTITIONED)
        world.sql("CREATE TABLE consent_old PARTITION OF consent FOR VALUES FROM (%s) TO (%s)".replace("%s", "'{}'").format(
            ago(400).isoformat(), ago(150).isoformat()))
        world.sql(f"CREATE TABLE consent_mid PARTITION OF consent FOR VALUES FROM ('{ago(150).isoformat()}') TO ('{ago(30).isoformat()}')")
        world.sql("CREATE TABLE consent_rest PARTITION OF consent DEFAULT")
        insert(world, "consent", [{"id": i, "created_at": ago(200 + i), "account": f"acct-{i}", "method": "sms"} for i in range(5)]
               + [{"id": 10, "created_at": ago(100), "account": "acct-10", "method": "sms"},
                  {"id": 11, "created_at": ago(120), "account": "held-1", "method": "sms"},  # held: its partition stays
                  {"id": 20, "created_at": ago(5), "account": "acct-20", "method": "sms"}])
        code, plan, _ = world.retain("--store", "consent-db")
        summary = store_plan(plan, "consent-db")
        drops = summary["postgres"]["partition_drops"]
        assert [d["partition"] for d in drops] == ["public.consent_old"] and drops[0]["rows"] == 5
        assert summary["counts"]["delete"] == 6 and summary["counts"]["held"] == 1
        assert any("partition drops" in note for note in summary["postgres"]["notes"])
        code, plan, out = world.retain("--apply", "--store", "consent-db")
        assert code == 0, store_plan(plan, "consent-db")
        assert world.sql("SELECT to_regclass('public.consent_old')")[0][0] is None
        assert sorted(world.rows("consent")) == [11, 20]
        kinds = [ln["action"] for ln in read_lines(out / "ledger.jsonl") if ln.get("outcome") == "ok"]
        assert sorted(kinds) == ["pg_delete_rows", "pg_drop_partition"]


def test_an_unreachable_database_is_an_error_for_its_store_alone(tmp_path: Path, monkeypatch, dsn: str) -> None:
    monkeypatch.setenv("VIGIL_BAD_DSN", "host=db.example.invalid port=5432 dbname=x user=y connect_timeout=3")

    def bad(data: dict) -> None:
        data["stores"][-2]["connection"] = {"dsn_env": "VIGIL_BAD_DSN"}
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn, change=bad)
        consent_rows(world)
        world.sql("DELETE FROM consent WHERE id = 5")
        code, plan, _ = world.retain("--apply", "--store", "calls-db", "--store", "consent-db")
        calls = store_plan(plan, "calls-db")
        assert code == 1 and "cannot connect" in calls["errors"][0]["reason"] and calls["verify"]["status"] == "fail"
        assert store_plan(plan, "consent-db")["verify"]["status"] == "pass"
        assert sorted(world.rows("consent")) == [3, 4]


def test_ret02_in_check_fails_on_rows_past_retention_then_passes_after_apply(tmp_path: Path, monkeypatch, dsn: str) -> None:
    from tests.test_retention_ret02 import _ret02

    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        consent_rows(world)
        world.sql("DELETE FROM consent WHERE id = 5")
        findings = {r: f for r, f in _ret02(world).items() if r.endswith("#public.consent")}
        (finding,) = findings.values()
        assert finding.status.value == "fail" and finding.evidence.observed["expired"] == 2
        assert finding.evidence.observed["held"] == 1 and finding.evidence.api == ["postgres:SELECT"]
        code, _, _ = world.retain("--apply", "--store", "consent-db")
        assert code == 0
        (finding,) = [f for r, f in _ret02(world).items() if r.endswith("#public.consent")]
        assert finding.status.value == "pass"


def test_vigil_creates_nothing_in_the_database(tmp_path: Path, monkeypatch, dsn: str) -> None:
    """No tracking table, function, extension, type or schema: its state is its ledger."""
    catalog = ("SELECT (SELECT count(*) FROM pg_class), (SELECT count(*) FROM pg_proc), (SELECT count(*) FROM pg_extension), "
               "(SELECT count(*) FROM pg_type), (SELECT count(*) FROM pg_namespace), (SELECT count(*) FROM pg_trigger)")
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn)
        world.sql(CALLS_TABLE)
        consent_rows(world)
        world.sql("DELETE FROM consent WHERE id = 5")
        insert(world, "calls", [call(i, 40) for i in range(1, 4)])
        before = world.sql(catalog)
        code, _, _ = world.retain("--apply", "--store", "calls-db", "--store", "consent-db")
        assert code == 0
        assert world.sql(catalog) == before


def test_account_closed_clock_and_forever_category(tmp_path: Path, monkeypatch, dsn: str) -> None:
    """contact: P2Y after the account closes (rows aged by subject_column and the subjects table);
    aggregates: kept forever (every row kept, nothing planned)."""
    def stores(data: dict) -> None:
        data["stores"][-2]["category"] = "contact"  # calls-db
        data["stores"][-1]["category"] = "aggregates"  # consent-db
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn, change=stores)
        world.table("accounts", "account_id")
        world.account("acct-old", closed_at=ago(3 * 366).strftime("%Y-%m-%dT%H:%M:%SZ"))
        world.account("acct-recent", closed_at=ago(30).strftime("%Y-%m-%dT%H:%M:%SZ"))
        world.account("acct-open")
        world.sql(CALLS_TABLE)
        consent_rows(world)
        insert(world, "calls", [call(1, 5, caller="acct-old"), call(2, 900, caller="acct-old"), call(3, 900, caller="acct-recent"),
                                call(4, 900, caller="acct-open"), call(5, 1, caller=None)])
        code, plan, _ = world.retain("--apply", "--store", "calls-db", "--store", "consent-db")
        calls = store_plan(plan, "calls-db")
        assert (calls["counts"]["delete"], calls["counts"]["keep"], calls["counts"]["error"]) == (2, 2, 1)
        assert sorted(world.rows()) == [3, 4, 5]  # every row of the account closed 3 years ago, however recent
        consent = store_plan(plan, "consent-db")
        assert consent["counts"]["keep"] == 5 and consent["counts"]["delete"] == 0 and len(world.rows("consent")) == 5
        assert code == 1  # the row without a subject cannot be aged: an error, left as it is


def test_a_batch_that_climbs_the_ladder_records_its_rung_in_the_ledger(tmp_path: Path, monkeypatch, dsn: str) -> None:
    """As for S3 objects and DynamoDB items: the ledger says how far a batch was generalized."""
    calls = {"verify": {"quasi_identifiers": ["caller_ip"], "k": 2, "max_suppression": 0.0,
                        "ladder": {"caller_ip": ["generalize_ip:16"]}}}
    with mock_aws():
        world = PgWorld(tmp_path, monkeypatch, dsn, calls=calls)
        world.sql(CALLS_TABLE)
        insert(world, "calls", [call(1, 40, ip="203.0.113.7"), call(2, 41, ip="203.0.114.9"), call(3, 42, ip="203.0.115.1")])
        code, plan, out = world.retain("--apply", "--store", "calls-db")
        assert code == 0, store_plan(plan, "calls-db")
        assert {row["caller_ip"] for row in world.rows().values()} == {"203.0.0.0/16"}
        written = [line for line in read_lines(out / "ledger.jsonl") if line["action"] == "pg_anonymize_rows"
                   and line["target"].get("counts", {}).get("anonymize")]
        assert written and all(line["target"]["generalization"] == {"caller_ip": "generalize_ip:16"} for line in written)
        code, plan, _ = world.retain("--apply", "--store", "calls-db")  # a /16 is anonymized already: nothing to do
        assert code == 0 and store_plan(plan, "calls-db")["counts"]["anonymize"] == 0


@pytest.mark.parametrize("base", ["text", "inet"])
def test_a_generalized_address_is_recognised_at_every_rung_and_only_then(dsn: str, base: str) -> None:
    """Rows already anonymized (at the base /24 or a ladder's wider rung) are done; an address, or a
    prefix that still carries host bits, is not. A text that is no address never breaks the query."""
    import psycopg
    from vigil.retention.postgres.sql import _shape

    values = {"203.0.113.0/24": True, "203.0.0.0/16": True, "10.0.0.0/8": True, "2001:db8:12::/48": True,
              "2001:db8::/32": True, "203.0.113.7/16": False, "203.0.113.7": False, "203.0.113.0/25": False,
              "2001:db8::1": False, "[REDACTED]": True, "999.1.1.1/8": False, "nonsense": False}
    if base == "inet":
        values = {v: ok for v, ok in values.items() if v not in ("[REDACTED]", "999.1.1.1/8", "nonsense")}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE nets (i int, v {base})")
        for index, value in enumerate(values):
            conn.execute("INSERT INTO nets VALUES (%s, %s)", [index, value])
        rows = conn.execute(f"SELECT i, {_shape('t.v', base, 'generalize_ip', None)} FROM nets t ORDER BY i").fetchall()
    assert dict(zip(values, [ok for _, ok in rows], strict=True)) == values
