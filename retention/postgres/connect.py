"""Connections to a store's database: an RDS instance with IAM auth, a Secrets Manager secret, or a DSN.

Every connection is opened fresh (an IAM token lasts 15 minutes, so one is generated per
connection, as Fides does). Sessions run with TimeZone UTC and DateStyle ISO, so values read
as text are the same whatever the server's settings, and truncation is in UTC. Vigil sets
session settings only: it creates nothing in the customer's database.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from vigil.aws import Aws
from vigil.policy.models import PostgresStore

# Where the RDS CA bundle is looked for when neither the policy nor $VIGIL_RDS_CA_BUNDLE names it.
# Download: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
CA_BUNDLE_PLACES = ("/etc/ssl/certs/rds-global-bundle.pem", "/usr/local/share/ca-certificates/rds-global-bundle.pem",
                    "~/.postgresql/rds-global-bundle.pem")
CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
SESSION = "-c TimeZone=UTC -c DateStyle=ISO -c lock_timeout=5000 -c idle_in_transaction_session_timeout=600000"


class ConnectionProblem(Exception):
    """The store's database cannot be reached or named; an error for that store alone."""


@dataclass(frozen=True)
class Target:
    """Where a store's database is, without secrets: what plans and findings may say."""

    resource: str  # the RDS instance ARN + table, or postgresql://host:port/db + table
    region: str
    instance: str | None = None  # the RDS instance identifier, when known (backups)


def ca_bundle(store: PostgresStore) -> str:
    named = store.connection.ca_bundle or os.environ.get("VIGIL_RDS_CA_BUNDLE")
    places = [named] if named else list(CA_BUNDLE_PLACES)
    for place in places:
        path = Path(place).expanduser()
        if path.is_file():
            return str(path)
    raise ConnectionProblem(f"the RDS CA bundle was not found ({', '.join(places)}); download {CA_BUNDLE_URL} "
                            "and name it with connection.ca_bundle or $VIGIL_RDS_CA_BUNDLE (TLS is verify-full)")


def region_of(store: PostgresStore, default: str) -> str:
    secret = store.connection.secret or ""
    if secret.startswith("arn:"):
        return secret.split(":")[3]
    return store.connection.region or default


def _instance(aws: Aws, store: PostgresStore, region: str) -> dict[str, Any]:
    try:
        answer = aws.client("rds", region).describe_db_instances(DBInstanceIdentifier=store.connection.rds_instance)
    except Exception as exc:  # denied, unknown instance, unreachable: this store's error
        raise ConnectionProblem(f"rds:DescribeDBInstances {store.connection.rds_instance}: {_short(exc)}") from None
    return answer["DBInstances"][0]


def params(aws: Aws, store: PostgresStore, default_region: str) -> tuple[dict[str, Any], Target]:
    """libpq keyword parameters (with a fresh IAM token or the secret's password) and the target."""
    conn = store.connection
    schema, table = store.schema_table
    region = region_of(store, default_region)
    if conn.dsn_env is not None:
        text = os.environ.get(conn.dsn_env)
        if not text:
            raise ConnectionProblem(f"environment variable {conn.dsn_env} (connection.dsn_env) is not set")
        try:
            parsed = psycopg.conninfo.conninfo_to_dict(text)
        except psycopg.ProgrammingError as exc:
            raise ConnectionProblem(f"${conn.dsn_env} is not a libpq connection string: {exc}") from None
        where = f"postgresql://{parsed.get('host', 'localhost')}:{parsed.get('port', 5432)}/{parsed.get('dbname', '')}"
        return dict(parsed), Target(f"{where}#{schema}.{table}", region)
    if conn.secret is not None:
        try:
            value = aws.client("secretsmanager", region).get_secret_value(SecretId=conn.secret)["SecretString"]
            secret = json.loads(value)
            found = {"host": secret["host"], "port": int(secret.get("port", 5432)), "user": secret["username"],
                     "password": secret["password"], "dbname": secret.get("dbname") or secret.get("dbName") or "postgres"}
        except (KeyError, TypeError, ValueError) as exc:
            raise ConnectionProblem(f"secret {conn.secret} lacks {exc} (needs username, password, host, port, dbname)") from None
        except Exception as exc:
            raise ConnectionProblem(f"secretsmanager:GetSecretValue {conn.secret}: {_short(exc)}") from None
        found.update(sslmode="verify-full", sslrootcert=ca_bundle(store))
        where = f"postgresql://{found['host']}:{found['port']}/{found['dbname']}"
        return found, Target(f"{where}#{schema}.{table}", region)
    instance = _instance(aws, store, region)
    endpoint = instance.get("Endpoint") or {}
    if not endpoint.get("Address"):
        raise ConnectionProblem(f"RDS instance {conn.rds_instance} has no endpoint yet (status {instance.get('DBInstanceStatus')})")
    host, port = endpoint["Address"], int(endpoint.get("Port", 5432))
    bundle = ca_bundle(store)
    try:
        token = aws.client("rds", region).generate_db_auth_token(DBHostname=host, Port=port, DBUsername=conn.user, Region=region)
    except Exception as exc:  # no credentials to sign with
        raise ConnectionProblem(f"rds generate_db_auth_token: {_short(exc)}") from None
    arn = instance.get("DBInstanceArn") or f"arn:aws:rds:{region}::db:{conn.rds_instance}"
    found = {"host": host, "port": port, "user": conn.user, "password": token, "dbname": conn.database,
             "sslmode": "verify-full", "sslrootcert": bundle}
    return found, Target(f"{arn}/{conn.database}#{schema}.{table}", region, conn.rds_instance)


def connect(aws: Aws, store: PostgresStore, default_region: str, autocommit: bool = False) -> tuple[psycopg.Connection, Target]:
    found, target = params(aws, store, default_region)
    found["options"] = (found.get("options", "") + " " + SESSION).strip()
    found.setdefault("application_name", "vigil")
    found.setdefault("connect_timeout", 10)
    try:
        return psycopg.connect(autocommit=autocommit, **found), target
    except psycopg.Error as exc:
        raise ConnectionProblem(f"cannot connect to {target.resource.split('#')[0]}: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")
