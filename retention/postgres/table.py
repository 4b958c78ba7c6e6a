"""What the catalog says about a store's table: columns, their types and NOT NULL, and time partitions.

Read once per run from pg_catalog (no privileges beyond the table's own are needed), then
checked against the store and its category before anything changes: every column the
store names exists, each transform can be written to its column's type, and no NOT NULL
column would be set to NULL by anonymization.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg

from vigil.policy.models import Category, PostgresStore

TEXT = {"text", "character varying", "character", "citext", "name"}
TIME = {"timestamp with time zone", "timestamp without time zone", "date"}
IP = {"inet", "cidr"}
NUMBER = {"smallint", "integer", "bigint", "numeric", "real", "double precision"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # format_type(), e.g. "character varying(64)": what values are cast to when written
    base: str  # the type without modifiers, e.g. "character varying"
    not_null: bool
    length: int | None = None  # varchar(n) / char(n)


@dataclass(frozen=True)
class Partition:
    name: str  # schema-qualified, quoted as the server quotes it
    oid: int
    upper: datetime | None  # exclusive upper bound of a range partition on the timestamp column (None: MAXVALUE/default)


@dataclass
class TableInfo:
    oid: int
    qualified: str  # schema.table as the server quotes it
    columns: dict[str, Column]
    partitions: list[Partition] = field(default_factory=list)  # leaf range partitions on the timestamp column
    partitioned: bool = False


def read_table(conn: psycopg.Connection, store: PostgresStore) -> TableInfo | str:
    """The table's catalog facts, or why they cannot be had (an error for the store)."""
    schema, table = store.schema_table
    row = conn.execute("SELECT c.oid, format('%%I.%%I', n.nspname, c.relname), c.relkind FROM pg_class c "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                       (schema, table)).fetchone()
    if row is None:
        return f"table {schema}.{table} does not exist (or is not visible to this user)"
    oid, qualified, relkind = row
    if relkind not in ("r", "p"):
        return f"{qualified} is not a table (relkind {relkind!r})"
    columns = {}
    for name, typ, base, not_null, typmod in conn.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), format_type(a.atttypid, NULL), a.attnotnull, a.atttypmod "
            "FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (oid,)):
        length = typmod - 4 if base in ("character varying", "character") and typmod > 4 else None
        columns[name] = Column(name, typ, base, not_null, length)
    info = TableInfo(oid, qualified, columns, partitioned=relkind == "p")
    if info.partitioned and store.timestamp_column is not None:
        info.partitions = _partitions(conn, oid, store.timestamp_column, columns)
    return info


_UPPER = re.compile(r"TO \('((?:[^']|'')*)'\)")


def _partitions(conn: psycopg.Connection, oid: int, column: str, columns: dict[str, Column]) -> list[Partition]:
    """Leaf range partitions of a table partitioned by the timestamp column alone, with their upper bounds."""
    key = conn.execute("SELECT p.partstrat, (SELECT array_agg(a.attname ORDER BY k.ord) FROM unnest(p.partattrs::int2[]) "
                       "WITH ORDINALITY k(attnum, ord) JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = k.attnum) "
                       "FROM pg_partitioned_table p WHERE p.partrelid = %s", (oid,)).fetchone()
    if key is None or key[0] != "r" or key[1] != [column]:
        return []
    out = []
    for child, name, bound, kind in conn.execute(
            "SELECT c.oid, format('%%I.%%I', n.nspname, c.relname), pg_get_expr(c.relpartbound, c.oid), c.relkind "
            "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE i.inhparent = %s ORDER BY 2", (oid,)).fetchall():
        if kind != "r":  # a sub-partitioned partition: its rows go by DELETE
            continue
        match = _UPPER.search(bound or "")
        out.append(Partition(name, child, _bound(conn, match.group(1).replace("''", "'"), columns[column]) if match else None))
    return out


def _bound(conn: psycopg.Connection, literal: str, column: Column) -> datetime | None:
    """A bound literal read as the column's type, in UTC (a naive timestamp or a date means UTC)."""
    value = conn.execute(f"SELECT %s::{column.type}", (literal,)).fetchone()[0]  # the type name comes from the catalog
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if value is not None and hasattr(value, "year"):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def problems(info: TableInfo, store: PostgresStore, category: Category) -> list[str]:
    """Why this store cannot be worked on as the policy says; reported before anything changes."""
    out = []
    named = [*store.primary_key, store.timestamp_column, store.subject_column]
    for column in [c for c in named if c is not None]:
        if column not in info.columns:
            out.append(f"column {column!r} (named by the store) is not a column of {info.qualified}")
    ts = info.columns.get(store.timestamp_column or "")
    if ts is not None and ts.base not in TIME:
        out.append(f"timestamp_column {ts.name!r} is {ts.type}; it must be a timestamp, timestamptz or date column")
    if category.action != "anonymize":
        return out
    transforms = category.anonymize or {}
    for name in transforms:
        if name not in info.columns:
            out.append(f"column {name!r} (named by category anonymize map) is not a column of {info.qualified}")
    for col in info.columns.values():
        if col.name in store.primary_key:
            continue
        transform = transforms.get(col.name)
        if transform is None or transform.name == "drop":
            if col.not_null:
                what = "dropped by the category" if transform is not None else "not named by the category"
                out.append(f"column {col.name!r} is NOT NULL and {what}: anonymizing would set it to NULL; "
                           f"name it in the category's anonymize map (e.g. keep or redact) or allow NULL")
            continue
        problem = _fits(col, transform.name, transform.arg)
        if problem:
            out.append(problem)
    return out


def _fits(column: Column, name: str, arg: object) -> str | None:
    """Whether `name` writes values the column's type can hold."""
    base = column.base
    if name == "keep":
        return None
    if name in ("redact", "mask", "pseudonymize"):
        if base not in TEXT:
            return f"column {column.name!r} is {column.type}; '{name}' writes text, so it needs a text column"
        need = {"redact": 10, "pseudonymize": 64}.get(name)
        if need and column.length is not None and column.length < need:
            return f"column {column.name!r} is {column.type}; '{name}' writes {need} characters"
        return None
    if name == "generalize_ip":
        if base in IP or base in TEXT:
            return None
        return f"column {column.name!r} is {column.type}; generalize_ip needs inet, cidr or a text column"
    if name == "truncate_time":
        if base in TIME or base in TEXT or base in NUMBER:
            return None
        return f"column {column.name!r} is {column.type}; truncate_time needs a timestamp, date, text or epoch column"
    return None
