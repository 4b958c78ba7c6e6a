"""The SQL privileges a PostgreSQL store's database user needs, printed by `vigil iam-policy retain|subject`.

Only table privileges: vigil creates nothing in the database (no table, function or extension),
so it needs no CREATE anywhere. Pure.
"""
from __future__ import annotations

from vigil.policy import Policy

from .sql import q


def sql_grants(policy: Policy) -> list[str]:
    """One GRANT per table and user, plus rds_iam for IAM-authenticated users; comments say why."""
    out: list[str] = []
    iam_users: set[str] = set()
    for store in policy.postgres_stores:
        conn = store.connection
        user = q(conn.user) if conn.user else ("<the secret's username>" if conn.secret else f"<the user in ${conn.dsn_env}>")
        if conn.rds_instance and conn.user:
            iam_users.add(q(conn.user))
        schema, table = store.schema_table
        category = policy.category_of(store)
        rights = "SELECT, UPDATE, DELETE" if category.action == "anonymize" else "SELECT, DELETE"
        out.append(f"GRANT USAGE ON SCHEMA {q(schema)} TO {user};  -- {store.name}")
        out.append(f"GRANT {rights} ON {q(schema)}.{q(table)} TO {user};  -- {store.name}: "
                   f"{'read, anonymize (UPDATE) and suppress (DELETE)' if 'UPDATE' in rights else 'read and delete'} due rows")
    for user in sorted(iam_users):
        out.append(f"GRANT rds_iam TO {user};  -- IAM database authentication (rds-db:connect)")
    if out:
        out.append("-- Partition drops need the table's owner; without it vigil deletes those rows in batches instead.")
    return out
