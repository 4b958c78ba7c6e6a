"""How vigil reaches a PostgreSQL store's database: IAM token per connection with TLS verify-full,
a Secrets Manager secret, or a DSN; what is missing is said per store."""
from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from vigil.retention.postgres.connect import ConnectionProblem, params

from vigil.aws import Aws
from vigil.policy.models import PostgresStore


def store(connection: dict) -> PostgresStore:
    return PostgresStore.model_validate({"name": "db", "kind": "postgres", "connection": connection, "table": "calls",
                                         "primary_key": ["id"], "timestamp_column": "ts", "category": "c"})


def test_rds_instance_gets_a_fresh_iam_token_and_verify_full(tmp_path: Path) -> None:
    bundle = tmp_path / "rds-global-bundle.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    with mock_aws():
        boto3.client("rds", region_name="us-east-1").create_db_instance(
            DBInstanceIdentifier="calls-prod", DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="admin", MasterUserPassword="x" * 12, AllocatedStorage=20)
        s = store({"rds_instance": "calls-prod", "database": "calls", "user": "vigil_retention", "ca_bundle": str(bundle)})
        first, target = params(Aws(), s, "us-east-1")
        second, _ = params(Aws(), s, "us-east-1")
    assert first["sslmode"] == "verify-full" and first["sslrootcert"] == str(bundle)
    assert first["user"] == "vigil_retention" and first["dbname"] == "calls"
    assert "X-Amz-Signature=" in first["password"] and "Action=connect" in first["password"]
    assert "DBUser=vigil_retention" in first["password"]
    assert target.instance == "calls-prod" and target.resource.startswith("arn:aws:rds:us-east-1:")
    assert target.resource.endswith("/calls#public.calls")
    assert second["password"]  # generated per connection


def test_rds_instance_without_the_ca_bundle_is_refused_with_where_to_get_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_RDS_CA_BUNDLE", str(tmp_path / "absent.pem"))
    with mock_aws():
        boto3.client("rds", region_name="us-east-1").create_db_instance(
            DBInstanceIdentifier="calls-prod", DBInstanceClass="db.t3.micro", Engine="postgres",
            MasterUsername="admin", MasterUserPassword="x" * 12, AllocatedStorage=20)
        with pytest.raises(ConnectionProblem, match="truststore.pki.rds.amazonaws.com"):
            params(Aws(), store({"rds_instance": "calls-prod", "database": "calls", "user": "u"}), "us-east-1")


def test_secret_gives_host_user_password_and_database(tmp_path: Path, monkeypatch) -> None:
    bundle = tmp_path / "b.pem"
    bundle.write_text("pem")
    monkeypatch.setenv("VIGIL_RDS_CA_BUNDLE", str(bundle))
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = sm.create_secret(Name="calls-db", SecretString=json.dumps(
            {"username": "u", "password": "s3cr3t-pw", "host": "db.example.invalid", "port": 6432, "dbname": "calls"}))["ARN"]
        found, target = params(Aws(), store({"secret": arn}), "us-east-1")
        assert (found["host"], found["port"], found["user"], found["password"], found["dbname"]) == ("db.example.invalid", 6432, "u", "s3cr3t-pw", "calls")
        assert found["sslmode"] == "verify-full" and target.region == "eu-west-1"
        assert target.resource == "postgresql://db.example.invalid:6432/calls#public.calls"  # no credentials
        sm.create_secret(Name="broken", SecretString=json.dumps({"username": "u"}))
        with pytest.raises(ConnectionProblem, match="lacks 'host'"):
            params(Aws(), store({"secret": "broken", "region": "eu-west-1"}), "us-east-1")


def test_dsn_env_unset_is_said() -> None:
    with pytest.raises(ConnectionProblem, match="VIGIL_NOPE"):
        params(Aws(), store({"dsn_env": "VIGIL_NOPE"}), "us-east-1")


def test_rds_backups_say_until_when_deleted_rows_stay_in_them() -> None:
    from datetime import UTC, datetime

    from vigil.retention.postgres.backups import rds_backups

    as_of = datetime(2026, 12, 4, tzinfo=UTC)
    with mock_aws():
        rds = boto3.client("rds", region_name="us-east-1")
        rds.create_db_instance(DBInstanceIdentifier="calls-prod", DBInstanceClass="db.t3.micro", Engine="postgres",
                               MasterUsername="admin", MasterUserPassword="x" * 12, AllocatedStorage=20, BackupRetentionPeriod=7)
        rds.create_db_snapshot(DBInstanceIdentifier="calls-prod", DBSnapshotIdentifier="before-migration")
        said = rds_backups(Aws(), "us-east-1", "calls-prod", as_of)
        assert said["automated_backup_days"] == 7 and said["until"] == "2026-12-11"
        assert sorted(s["type"] for s in said["snapshots"]) == ["automated", "manual"]  # moto takes one at creation
        assert "until 2026-12-11" in said["note"] and "1 manual snapshots" in said["note"]
        assert "vigil cannot see" in rds_backups(Aws(), "us-east-1", None, as_of)["note"]
        assert "failed" in rds_backups(Aws(), "us-east-1", "absent", as_of)["note"]
