"""The policy's rules for one table as SQL: which rows are due, held, already anonymized, unreadable.

Pure: builds SQL text and its named parameters, and talks to no database. Identifiers come
from the policy (validated names) or the catalog, quoted here; every value (cut-offs,
subject ids of legal holds) is a bound parameter, never part of the SQL text.

A row is due when its timestamp is at or before the cut-off: as-of minus grace minus the
category's retention, on the calendar (month ends clamp) and in UTC (sessions run with
TimeZone UTC; a timestamp without time zone, or a date, is read as UTC). For a category
whose clock starts at account closure, the subjects whose accounts closed long enough ago
are due. The first matching legal hold (by subject) wins, then keep_at_least.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from vigil.policy import Duration
from vigil.policy.models import Category, Hold, PostgresStore

from ..decide import EXPIRED, HELD, Rules
from .table import IP, NUMBER, TEXT, TIME, TableInfo

DUE, KEEP, ERROR, DONE = "due", "keep", "error", "done"  # DONE: already anonymized (kept as it is)
HEX64 = "^[0-9a-f]{64}$"
# generalize_ip's outputs: an IPv4 network of /24 or wider (a ladder's rung widens it: /16, /8), an
# IPv6 network of /48 or wider, or the redaction. OCTET keeps the text cast to inet below from failing.
OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
V4_NET = rf"^{OCTET}(\.{OCTET}){{3}}/([0-9]|1[0-9]|2[0-4])$"
V6_NET = r"^[0-9a-fA-F:]*::/([0-9]|[1-3][0-9]|4[0-8])$"


def q(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _param_time(value: datetime, column_base: str) -> Any:
    """A UTC instant as the column's own type, so the comparison needs no time zone."""
    value = value.astimezone(UTC)
    if column_base == "timestamp without time zone":
        return value.replace(tzinfo=None)
    if column_base == "date":
        return value.date()
    return value


@dataclass
class Selection:
    """SQL for one store and one run: `state` classifies a row; `params` binds its values."""

    store: PostgresStore
    info: TableInfo
    category: Category
    table: str  # quoted, schema-qualified
    state: str  # CASE ... END over alias t: DONE | ERROR | KEEP | hold:<n> | DUE
    due: str = "FALSE"  # the same as state = DUE, written so the planner can estimate it and use indexes
    params: dict[str, Any] = field(default_factory=dict)
    holds: list[tuple[str, date | None]] = field(default_factory=list)  # hold:<n> -> (reason, until)
    keep_reason: str | None = None  # hold:keep
    anonymized: str = "FALSE"  # the already-anonymized predicate (anonymize categories)
    unnamed: list[str] = field(default_factory=list)  # non-key columns the category does not name (set to NULL)

    @property
    def pk(self) -> list[str]:
        return [q(c) for c in self.store.primary_key]

    @property
    def pk_row(self) -> str:
        cols = ", ".join(f"t.{c}" for c in self.pk)
        return f"ROW({cols})" if len(self.pk) > 1 else cols

    @property
    def pk_types(self) -> list[str]:
        return [self.info.columns[c].type for c in self.store.primary_key]

    def where(self, states: tuple[str, ...] = (DUE,)) -> str:
        if states == (DUE,):
            return self.due
        return f"({self.state}) IN ({', '.join(repr(s) for s in states)})"


def active_holds(holds: tuple[Hold, ...], as_of: datetime) -> list[Hold]:
    today = as_of.astimezone(UTC).date()
    return [h for h in holds if h.subjects and (h.until is None or h.until >= today)]


def build(store: PostgresStore, info: TableInfo, rules: Rules, grace: Duration | None = None,
          only_subject: str | None = None) -> Selection:
    """The selection for retention (rules.closed: closed accounts), or with `only_subject` for erasure:
    every row of that subject is due, whatever its age, unless held."""
    category = rules.category
    table = info.qualified
    params: dict[str, Any] = {}
    ts = q(store.timestamp_column) if store.timestamp_column else None
    subj = q(store.subject_column) if store.subject_column else None
    ts_base = info.columns[store.timestamp_column].base if store.timestamp_column else ""
    cases: list[tuple[str, str]] = []
    sel = Selection(store, info, category, table, "", params=params)
    if category.action == "anonymize":
        sel.anonymized, sel.unnamed = anonymized_predicate(store, info, category)
        cases.append((sel.anonymized, DONE))
    if only_subject is not None:
        assert subj is not None
        params["subject"] = only_subject
        cases.append((f"t.{subj}::text IS DISTINCT FROM %(subject)s", KEEP))
    elif category.retain.forever:
        cases.append(("TRUE", KEEP))
    elif category.after == "account_closed":
        assert subj is not None
        due = [s for s in rules.closed if rules.decide(None, s).verdict in (EXPIRED, HELD)]
        params["due_subjects"] = due
        cases += [(f"t.{subj} IS NULL", ERROR), (f"NOT (t.{subj}::text = ANY(%(due_subjects)s))", KEEP)]
    else:
        assert ts is not None
        end = grace.before(rules.as_of) if grace is not None else rules.as_of
        params["cut"] = _param_time(category.retain.before(end), ts_base)
        cases += [(f"t.{ts} IS NULL", ERROR), (f"t.{ts} > %(cut)s", KEEP)]
    if subj is not None:
        for index, hold in enumerate(active_holds(rules.holds, rules.as_of)):
            params[f"hold_{index}"] = list(hold.subjects)
            cases.append((f"t.{subj}::text = ANY(%(hold_{index})s)", f"hold:{index}"))
            sel.holds.append((f"legal hold: {hold.reason}", hold.until))
    if category.keep_at_least is not None and ts is not None:
        params["keep_cut"] = _param_time(category.keep_at_least.before(rules.as_of), ts_base)
        undated = f"t.{ts} IS NULL OR " if only_subject is not None else ""  # erasure: a minimum period with no date runs
        cases.append((f"{undated}t.{ts} > %(keep_cut)s", "hold:keep"))
        sel.keep_reason = f"keep_at_least {category.keep_at_least}"
    whens = " ".join(f"WHEN {cond} THEN '{state}'" for cond, state in cases)
    sel.state = f"CASE {whens} ELSE '{DUE}' END"
    # DUE is "no case matched": each condition is false or unknown (NULL), as CASE reads it.
    sel.due = " AND ".join(f"({cond}) IS NOT TRUE" for cond, _ in cases) or "TRUE"
    return sel


def anonymized_predicate(store: PostgresStore, info: TableInfo, category: Category) -> tuple[str, list[str]]:
    """True for a row that anonymizing again would not change: every column the category drops or
    does not name is NULL, and every transformed value already has its transform's output shape
    (a pseudonym is 64 lowercase hex digits, as in S3 objects). This is the guard that keeps a
    row from being anonymized twice; no marker column is needed. Key columns are kept as they are."""
    transforms = category.anonymize or {}
    parts, unnamed = [], []
    for column in info.columns.values():
        if column.name in store.primary_key:
            continue
        c = f"t.{q(column.name)}"
        transform = transforms.get(column.name)
        if transform is None or transform.name == "drop":
            if transform is None:
                unnamed.append(column.name)
            parts.append(f"{c} IS NULL")
            continue
        shape = _shape(c, column.base, transform.name, transform.arg)
        if shape is not None:
            parts.append(f"({c} IS NULL OR {shape})")
    return ("(" + " AND ".join(parts) + ")") if parts else "TRUE", unnamed


def _shape(c: str, base: str, name: str, arg: Any) -> str | None:
    """SQL true when the value is already its transform's output (None: any value is)."""
    text = f"{c}::text"
    if name == "keep":
        return None
    if name == "redact":
        return f"{text} = '[REDACTED]'"
    if name == "pseudonymize":
        return f"{text} ~ '{HEX64}'"
    if name == "mask":
        keep = int(arg or 0)
        return f"(length({text}) <= {keep} OR left({text}, length({text}) - {keep}) ~ '^[*]+$')"
    if name == "generalize_ip":
        if base in IP:  # an inet column holds host bits too: a network is one whose host bits are zero
            return f"(masklen({c}) <= (CASE WHEN family({c}) = 4 THEN 24 ELSE 48 END) AND {c} = network({c}))"
        return (f"({text} = '[REDACTED]' OR {text} ~ '{V6_NET}' OR CASE WHEN {text} ~ '{V4_NET}' THEN "
                f"({text}::inet = network({text}::inet)) ELSE false END)")
    if name == "truncate_time":
        seconds = 86400 if arg == "day" else 3600
        if base == "date":
            return None
        if base in TIME:
            return f"mod(extract(epoch FROM {c}), {seconds}) = 0"
        if base in NUMBER:
            return f"mod({c}::numeric, {seconds}) = 0"
        hour = "00" if arg == "day" else "[0-9][0-9]"
        return (f"({text} = '[REDACTED]' OR {text} ~ '^[0-9]{{4}}-[0-9][0-9]-[0-9][0-9]([T ]{hour}:00:00"
                f"(\\.0+)?(Z|[+-]00(:?00)?)?)?$')")
    return None


__all__ = ["DONE", "DUE", "ERROR", "IP", "KEEP", "NUMBER", "TEXT", "Selection", "build", "q"]
