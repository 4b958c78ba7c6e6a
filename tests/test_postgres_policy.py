"""The `postgres` store kind in the policy file: its normative shape loads, mistakes name file:line:key."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from vigil.policy import PolicyError, PostgresStore, load_policy

SPEC_STORE = {"name": "call-history-db", "kind": "postgres",
              "connection": {"rds_instance": "calls-prod", "database": "calls", "user": "vigil_retention"},
              "table": "public.call_records", "primary_key": ["id"], "timestamp_column": "started_at",
              "subject_column": "caller_account", "category": "call_history"}


def write(tmp_path: Path, store: dict) -> Path:
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    data["stores"].append(store)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def error_lines(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    return str(caught.value).splitlines()


def test_the_spec_shape_loads(tmp_path: Path) -> None:
    policy = load_policy(write(tmp_path, SPEC_STORE))
    store = policy.postgres_stores[0]
    assert isinstance(store, PostgresStore) and store.schema_table == ("public", "call_records")
    for other in ({"secret": "arn:aws:secretsmanager:us-east-1:123456789012:secret:calls-db"}, {"dsn_env": "VIGIL_CALLS_DSN"}):
        assert load_policy(write(tmp_path, {**SPEC_STORE, "connection": other})).postgres_stores[0].connection


@pytest.mark.parametrize(("change", "key", "words"), [
    ({"connection": {"rds_instance": "calls-prod", "database": "calls"}}, ".connection", "needs 'database' and 'user'"),
    ({"connection": {"dsn_env": "X", "secret": "s"}}, ".connection", "exactly one of"),
    ({"connection": {"dsn_env": "X", "user": "u"}}, ".connection", "go with 'rds_instance'"),
    ({"table": "public.calls; DROP TABLE x"}, ".table", "should match pattern"),
    ({"primary_key": []}, ".primary_key", "at least 1"),
    ({"timestamp_column": None}, ".timestamp_column", "required to age rows"),
    ({"kind": "postgresql"}, "stores[", "unknown store kind 'postgresql'"),
])
def test_mistakes_name_file_line_and_key(tmp_path: Path, change: dict, key: str, words: str) -> None:
    path = write(tmp_path, {**SPEC_STORE, **change})
    lines = error_lines(path)
    assert any(line.startswith(f"{path}:") and key in line and words in line for line in lines), lines
    assert all(line.split(":")[1].isdigit() and int(line.split(":")[1]) > 1 for line in lines), lines


def test_a_transformed_primary_key_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, {**SPEC_STORE, "primary_key": ["caller"]})
    assert any("primary key column 'caller'" in line and ".primary_key" in line for line in error_lines(path))


def test_holds_by_subject_need_a_subject_column(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    data["holds"] = [{"reason": "Litigation", "subjects": ["acct-9"]}]
    data["stores"].append({k: v for k, v in SPEC_STORE.items() if k != "subject_column"})
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert any(".subject_column" in line and "legal hold names subjects" in line for line in error_lines(path))


def test_iam_policy_retain_scopes_database_access_and_prints_the_sql_grants(tmp_path: Path, capsys) -> None:
    from vigil.cli.main import main

    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:calls-db-AbCdEf"
    data["stores"] += [SPEC_STORE, {**SPEC_STORE, "name": "by-secret", "table": "billing.invoices", "connection": {"secret": secret}}]
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    assert main(["iam-policy", "retain", "--policy", str(path), "--account", "123456789012"]) == 0
    out = capsys.readouterr()
    statements = {s["Sid"]: s for s in __import__("json").loads(out.out)["Statement"]}
    users = statements["StoreDatabaseUsers"]
    assert users["Action"] == ["rds-db:connect"]
    assert users["Resource"] == ["arn:aws:rds-db:us-east-1:123456789012:dbuser:*/vigil_retention"]
    assert statements["StoreSecrets"]["Action"] == ["secretsmanager:GetSecretValue"] and statements["StoreSecrets"]["Resource"] == [secret]
    assert 'GRANT SELECT, UPDATE, DELETE ON "public"."call_records" TO "vigil_retention"' in out.err
    assert 'GRANT rds_iam TO "vigil_retention"' in out.err and "<the secret's username>" in out.err
    assert "CREATE" not in out.err  # vigil creates nothing in the database
