"""The plan for one PostgreSQL table: rows counted in SQL by state, partitions that can go whole, actions.

One grouped scan classifies every row (due, kept, held by which hold, already anonymized,
unreadable) per partition. A range partition on the timestamp column whose upper bound is at
or before the cut-off, and which holds nothing but due rows, is planned as a partition drop
(far cheaper than DELETE); the rest of the due rows as batched deletes or anonymization. For
an anonymizing category with k-anonymity the due rows are read once, batch by batch in key
order as apply will, to say how many would be anonymized, suppressed or refused.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, overload

import psycopg

from ..keys import RetentionKeys
from ..plan import Summary, action_id
from ..transforms import Anonymizer
from .rows import BATCH, judge, select_batch
from .sql import DONE, DUE, ERROR, KEEP, Selection, q

Emit = Callable[[dict[str, Any]], None]


@dataclass
class StoreWork:
    """What apply needs for one planned store: a way to connect, its selection, anonymizer and resource."""

    connect: Callable[[], psycopg.Connection]
    sel: Selection
    anonymizer: Anonymizer | None
    resource: str


@dataclass
class PgSummary(Summary):
    """A store summary with what only databases have: partition drops, backups, notes."""

    partitions: list[dict[str, Any]] = field(default_factory=list)  # planned drops: name, rows, upper bound
    backups: dict[str, Any] | None = None  # what RDS automated backups and snapshots keep, and until when
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = super().to_json()
        out["postgres"] = {"partition_drops": list(self.partitions), "backups": self.backups, "notes": list(self.notes)}
        return out


@dataclass
class StateCounts:
    rows: int = 0
    bytes: int = 0
    oldest: Any = None
    newest: Any = None
    unnamed: dict[str, int] = field(default_factory=dict)


def count_states(conn: psycopg.Connection, sel: Selection) -> dict[tuple[str, int], StateCounts]:
    """(state, tableoid) -> counts, from one grouped scan of the table."""
    ts = f"t.{q(sel.store.timestamp_column)}" if sel.store.timestamp_column else "NULL::timestamptz"
    extra = "".join(f", count(t.{q(c)})" for c in sel.unnamed)
    text = (f"SELECT {sel.state} AS state, t.tableoid::oid::bigint, count(*), coalesce(sum(pg_column_size(t.*)), 0)::bigint, "
            f"min({ts}), max({ts}){extra} FROM {sel.table} t GROUP BY 1, 2")
    out = {}
    for row in conn.execute(text, sel.params):
        counts = StateCounts(row[2], row[3], row[4], row[5], {c: row[6 + i] for i, c in enumerate(sel.unnamed)})
        out[(row[0], row[1])] = counts
    return out


@overload
def utc_start(value: None) -> None: ...
@overload
def utc_start(value: datetime | date) -> datetime: ...
def utc_start(value: Any) -> datetime | None:
    """A timestamp, naive timestamp or date read from the table, as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def tally(summary: Summary, sel: Selection, states: dict[tuple[str, int], StateCounts], verb: str) -> int:
    """Add the counts to the summary (due rows under `verb`); the number of due rows."""
    due = 0
    for (state, _), c in sorted(states.items(), key=lambda kv: kv[0]):
        summary.scanned += c.rows
        if state in (KEEP, DONE):
            summary.add("keep", c.rows, c.bytes)
        elif state == ERROR:
            what = "a timestamp" if sel.category.after != "account_closed" else "a subject"
            summary.error(summary.resource, f"{c.rows} rows have no {what} to age them by", c.rows, c.bytes)
        elif state == "hold:keep":
            minimum = sel.category.keep_at_least
            until = minimum.after(utc_start(c.newest)).date() if minimum is not None and c.newest is not None else None
            summary.hold(str(sel.keep_reason), until, c.rows, c.bytes)
        elif state.startswith("hold:"):
            reason, until = sel.holds[int(state.split(":")[1])]
            summary.hold(reason, until, c.rows, c.bytes)
        else:
            due += c.rows
            summary.add(verb, c.rows, c.bytes)
            if c.oldest is not None:
                summary.expired(utc_start(c.oldest), f"{sel.info.qualified} ({c.rows} rows)")
    return due


def droppable(sel: Selection, states: dict[tuple[str, int], StateCounts]) -> list[tuple[Any, StateCounts]]:
    """Partitions whose rows are all due now and always will be (upper bound at or before the cut-off)."""
    cut = sel.params.get("cut")
    if sel.category.action != "delete" or cut is None or not sel.info.partitions:
        return []
    cut_utc = utc_start(cut)
    out = []
    for part in sel.info.partitions:
        mine = {state: c for (state, oid), c in states.items() if oid == part.oid}
        if part.upper is None or part.upper > cut_utc or set(mine) != {DUE}:
            continue
        out.append((part, mine[DUE]))
    return out


def plan_store(conn: psycopg.Connection, sel: Selection, summary: PgSummary, keys: RetentionKeys,
               anonymizer: Anonymizer | None, emit: Emit) -> None:
    verb = "anonymize" if anonymizer is not None else "delete"
    states = count_states(conn, sel)
    due = tally(summary, sel, states, verb)
    for (state, _), c in states.items():
        if state == DUE:
            summary.dropped(c.unnamed)
    if not due:
        return
    location = sel.info.qualified
    if anonymizer is None:
        for part, c in droppable(sel, states):
            due -= c.rows
            summary.partitions.append({"partition": part.name, "rows": c.rows, "upper_bound": part.upper.isoformat()})
            emit(_action({"action": "pg_drop_partition", "store": sel.store.name, "location": location, "object": part.name,
                          "count": c.rows, "bytes": c.bytes}, summary.resource))
        if summary.partitions:
            summary.notes.append(f"{len(summary.partitions)} partitions hold only rows past retention and nothing held: "
                                 "planned as partition drops (DROP TABLE of the partition) instead of DELETE")
        if due:
            emit(_action({"action": "pg_delete_rows", "store": sel.store.name, "location": location, "count": due}, summary.resource))
        return
    counts = {"anonymize": due, "suppress": 0}
    if anonymizer.quasi:
        counts = judge_all(conn, sel, anonymizer, summary)
    if counts["anonymize"] + counts["suppress"]:
        emit(_action({"action": "pg_anonymize_rows", "store": sel.store.name, "location": location,
                      "count": counts["anonymize"] + counts["suppress"], "counts": counts}, summary.resource))


def judge_all(conn: psycopg.Connection, sel: Selection, anonymizer: Anonymizer, summary: Summary) -> dict[str, int]:
    """Read the due rows in key order, batch by batch as apply will, and judge k-anonymity of each."""
    counts = {"anonymize": 0, "suppress": 0}
    after = None
    refused_rows = 0
    while True:
        rows = select_batch(conn, sel, after, BATCH, whole=True)
        if not rows:
            break
        after = rows[-1].key
        judged = judge(anonymizer, sel, rows)
        if judged.refused is not None:
            refused_rows += len(rows)
            summary.error(summary.resource, f"batch of {len(rows)} rows: {judged.refused}", 0)
            continue
        counts["anonymize"] += len(judged.updates)
        counts["suppress"] += len(judged.suppressed)
    summary.counts["anonymize"] -= counts["suppress"] + refused_rows
    summary.add("suppress", counts["suppress"], 0)
    summary.add("error", refused_rows, 0)
    summary.stuck += refused_rows
    return counts


def _action(action: dict[str, Any], resource: str) -> dict[str, Any]:
    action["action_id"] = action_id(action)
    # What the public actions file and the ledger say: the table and counts (no row keys or values).
    action["target"] = {"location": resource, **{k: action[k] for k in ("object", "count", "counts") if k in action}}
    return action
