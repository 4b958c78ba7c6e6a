"""Batches of rows: read in primary-key order (keyset), anonymized in Python, written with bound values.

The transforms are retention's own (`transforms.Anonymizer`, as for S3 records and DynamoDB
items), applied in this process: the HMAC key never reaches the database, its SQL text or
its logs; only the resulting values travel, as parameters. A row is read as `to_jsonb(t)`
in a UTC session, so timestamps reach the transforms as ISO 8601 text (truncation in UTC
whatever the server's TimeZone) and are written back cast to the column's type.
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from .. import kanon
from ..transforms import Anonymizer
from .sql import DUE, Selection, q

BATCH = 1000  # rows judged together for k-anonymity, and written in one transaction


@dataclass
class Row:
    key: list[str | None]  # primary key values as text (cast back to the column types when bound)
    xmin: str  # the row version read: the write is guarded by it
    fields: dict[str, Any] | None = None  # the row as JSON values (anonymize, export)

    @property
    def key_text(self) -> str:
        return key_text(self.key)


def key_text(key: list[str | None]) -> str:
    """A row's key as text: what `find` names and what the keyed hashes in evidence are computed over."""
    return orjson.dumps(key).decode()


def key_hash(evidence_key: bytes, key: list[str | None]) -> str:
    """RetentionKeys.hash of a key's text (the one-shot C HMAC: batches hash many)."""
    return hmac.digest(evidence_key, orjson.dumps(key), "sha256").hex()


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def key_params(sel: Selection, keys: list[list[str | None]], prefix: str = "k") -> tuple[str, dict[str, Any]]:
    """unnest() arguments for a list of keys: one text[] per key column, cast to the column's type."""
    params = {f"{prefix}{i}": [k[i] for k in keys] for i in range(len(sel.pk))}
    args = ", ".join(f"%({prefix}{i})s::text[]::{typ}[]" for i, typ in enumerate(sel.pk_types))
    return args, params


def _after(sel: Selection, after: list[str | None] | None, params: dict[str, Any]) -> str:
    if after is None:
        return ""
    for i, value in enumerate(after):
        params[f"a{i}"] = value
    bound = ", ".join(f"%(a{i})s::{typ}" for i, typ in enumerate(sel.pk_types))
    return f" AND {sel.pk_row} > {'ROW(' + bound + ')' if len(sel.pk) > 1 else bound}"


def select_batch(conn: psycopg.Connection, sel: Selection, after: list[str | None] | None, limit: int = BATCH,
                 lock: bool = False, whole: bool = False, wait: bool = False, states: tuple[str, ...] = (DUE,),
                 extra: str = "", extra_params: dict[str, Any] | None = None) -> list[Row]:
    """The next rows in these states after key `after`, in key order; `lock`: FOR UPDATE SKIP LOCKED
    (rows another transaction is changing are left for a later run); `wait`: FOR UPDATE, waiting up to
    the session's lock_timeout; `whole`: with their fields."""
    params = {**sel.params, **(extra_params or {})}
    keys = ", ".join(f"t.{c}" for c in sel.pk)
    body = ", to_jsonb(t)" if whole else ""
    text = (f"SELECT {keys}, t.xmin::text{body} FROM {sel.table} t WHERE {sel.where(states)}{extra}"
            f"{_after(sel, after, params)} ORDER BY {keys} LIMIT {int(limit)}")
    if lock or wait:
        text += " FOR UPDATE OF t" + ("" if wait else " SKIP LOCKED")
    n = len(sel.pk)
    out = []
    for row in conn.execute(text, params):
        out.append(Row([_text(v) for v in row[:n]], row[n], row[n + 1] if whole else None))
    return out


@dataclass
class Judged:
    """A batch after the transforms: what to write to each row, which rows to delete, or why neither."""

    updates: list[tuple[Row, dict[str, Any]]] = field(default_factory=list)
    suppressed: list[Row] = field(default_factory=list)
    refused: str | None = None
    unnamed: dict[str, int] = field(default_factory=dict)
    generalization: dict[str, str] = field(default_factory=dict)  # the ladder rung climbed (kanon.py)


def written_columns(sel: Selection) -> list[str]:
    """Columns an UPDATE sets: transformed ones, and those dropped or not named (to NULL). Kept ones are not touched."""
    transforms = sel.category.anonymize or {}
    return [c for c in sel.info.columns if c not in sel.store.primary_key and
            (c not in transforms or transforms[c].name != "keep")]


def judge(anonymizer: Anonymizer, sel: Selection, rows: list[Row]) -> Judged:
    out = Judged()
    if not rows:
        return out
    records = []
    zoned = [c.name for c in sel.info.columns.values() if c.base == "timestamp with time zone"]
    for row in rows:
        present = {k: v for k, v in (row.fields or {}).items() if v is not None}  # NULL stays NULL
        for name in zoned:  # a UTC session writes +00:00; the Z form is the transforms' fast path, same instant
            value = present.get(name)
            if value is not None and value.endswith("+00:00"):
                present[name] = value[:-6] + "Z"
        records.append(anonymizer.record(present))
        for name in sel.unnamed:
            if name in present:
                out.unnamed[name] = out.unnamed.get(name, 0) + 1
    judged = kanon.judge(anonymizer, records)  # one k-anonymity for every store kind, ladder included
    suppressed, records, out.refused, out.generalization = judged.suppressed, judged.records, judged.refused, judged.rung
    if out.refused is not None:
        return out
    columns = written_columns(sel)
    for index, (row, record) in enumerate(zip(rows, records, strict=True)):
        if index in suppressed:
            out.suppressed.append(row)
        else:
            out.updates.append((row, {c: _text(record.get(c)) for c in columns}))
    return out


def write_updates(conn: psycopg.Connection, sel: Selection, updates: list[tuple[Row, dict[str, Any]]]) -> int:
    """One UPDATE for the batch, each row guarded by the version (xmin) that was read and transformed."""
    if not updates:
        return 0
    columns = written_columns(sel)
    # The batch travels as one JSON parameter (a list of [key..., xmin, value...]): one C encoder call
    # here and one parse there, instead of an array per column.
    batch = orjson.dumps([[*row.key, row.xmin, *(values[c] for c in columns)] for row, values in updates]).decode()
    types = {c.name: c.type for c in sel.info.columns.values()}
    n = len(sel.pk)
    keys = [f"(v->>{i})::{typ}" for i, typ in enumerate(sel.pk_types)]
    sets = ", ".join(f"{q(c)} = (v->>{n + 1 + j})::{types[c]}" for j, c in enumerate(columns))
    match = " AND ".join(f"t.{c} = {k}" for c, k in zip(sel.pk, keys, strict=True))
    text = (f"UPDATE {sel.table} AS t SET {sets} FROM jsonb_array_elements(%(batch)s::jsonb) AS v "
            f"WHERE {match} AND t.xmin::text = v->>{n}")
    return conn.execute(text, {"batch": batch}).rowcount


def delete_next(conn: psycopg.Connection, sel: Selection, after: list[str | None] | None,
                limit: int) -> tuple[int, list[str | None], list[str | None], str]:
    """DELETE the next due rows after key `after` (key order, FOR UPDATE SKIP LOCKED) in one statement,
    uncommitted: (rows deleted, first key, last key, transaction id), for the intent written before COMMIT.
    Only the batch's two end keys travel back: per-row work here would cost more than the DELETE."""
    params = dict(sel.params)
    keys = ", ".join(f"t.{c}" for c in sel.pk)
    names = ", ".join(sel.pk)
    desc = ", ".join(f"{c} DESC" for c in sel.pk)
    match = " AND ".join(f"t.{c} = b.{c}" for c in sel.pk)
    bound = _after(sel, after, params)  # in the DELETE too: the join's index scan starts there, not at the first key
    text = (f"WITH b AS (SELECT {keys} FROM {sel.table} t WHERE {sel.due}{bound} ORDER BY {keys} "
            f"LIMIT {int(limit)} FOR UPDATE OF t SKIP LOCKED), "
            f"gone AS (DELETE FROM {sel.table} AS t USING b WHERE {match}{bound} RETURNING 1), "
            f"lo AS (SELECT {names} FROM b ORDER BY {names} LIMIT 1), hi AS (SELECT {names} FROM b ORDER BY {desc} LIMIT 1) "
            f"SELECT (SELECT count(*) FROM gone), pg_current_xact_id()::text, lo.*, hi.* FROM lo, hi")
    row = conn.execute(text, params).fetchone()
    if row is None:
        return 0, [], [], ""
    n = len(sel.pk)
    return int(row[0]), [_text(v) for v in row[2:2 + n]], [_text(v) for v in row[2 + n:]], str(row[1])


def delete_rows(conn: psycopg.Connection, sel: Selection, rows: list[Row], guard: bool = True) -> int:
    """DELETE the rows by key (and, with `guard`, only in the version that was read)."""
    if not rows:
        return 0
    args, params = key_params(sel, [row.key for row in rows])
    names = [f"k{i}" for i in range(len(sel.pk))]
    match = " AND ".join(f"t.{c} = v.k{i}" for i, c in enumerate(sel.pk))
    if guard:
        params["xm"] = [row.xmin for row in rows]
        text = (f"DELETE FROM {sel.table} AS t USING unnest(%(xm)s::text[], {args}) AS v(xm, {', '.join(names)}) "
                f"WHERE {match} AND t.xmin::text = v.xm")
    else:
        text = f"DELETE FROM {sel.table} AS t USING unnest({args}) AS v({', '.join(names)}) WHERE {match}"
    return conn.execute(text, params).rowcount
