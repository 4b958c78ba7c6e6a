"""k-anonymity for one batch of anonymized records: climb the category's generalization ladder
when the small classes would be too many, suppress what is still below k, or refuse the batch.

One implementation for every path that publishes anonymized records: S3 objects
(anonymize.rewrite), DynamoDB items (plan_items), PostgreSQL rows (postgres/rows) and
`vigil anonymize` (stream).

The ladder is the simplest form of the generalization lattice ARX searches: a node gives each
quasi-identifier with a ladder a level (0: its `anonymize` transform alone, i: that and the
i-th rung over it). Nodes are tried by height (the sum of the levels); at one height, the field listed first in
`verify.ladder` climbs first. The first that leaves at most `max_suppression` of the batch in classes
below k wins, so no node of a lower height, and none below it on every field, was enough.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from .transforms import Anonymizer

Column = list[str]


@dataclass
class Judged:
    records: list[dict[str, Any]]  # the anonymized records as published (generalized at `rung`)
    suppressed: set[int]  # indices of records in classes below k (with `rung` applied)
    refused: str | None = None  # why the batch may not be published at all
    rung: dict[str, str] = field(default_factory=dict)  # quasi-identifier -> rung applied (empty: none was needed)

    @property
    def label(self) -> str | None:
        """The rung as one phrase for plans, ledgers and counts ("ip=generalize_ip:16, ts=truncate_time:week")."""
        return rung_label(self.rung)


def rung_label(rung: dict[str, str]) -> str | None:
    return ", ".join(f"{q}={r}" for q, r in rung.items()) or None


def refusal(anonymizer: Anonymizer, suppressed: int, total: int) -> str | None:
    """Why a batch may not be written (too many records in classes below k), or None."""
    share = suppressed / total if total else 0.0
    if share <= anonymizer.max_suppression:
        return None
    return (f"k-anonymity: {suppressed} of {total} records ({share:.0%}) fall in classes "
            f"smaller than k={anonymizer.k}, above max_suppression {anonymizer.max_suppression:.0%}")


def judge(anonymizer: Anonymizer, records: list[dict[str, Any]]) -> Judged:
    """The batch as it may be published: `records` (already transformed) at the lowest rung that
    reaches k within max_suppression, the records still below k, or the refusal."""
    suppressed = anonymizer.suppressed(records)
    refused = refusal(anonymizer, len(suppressed), len(records))
    if refused is None or not anonymizer.ladder:
        return Judged(records, suppressed, refused)
    return _climb(anonymizer, records, refused)


def nodes(anonymizer: Anonymizer) -> list[dict[str, int]]:
    """The ladder's nodes in the order they are tried ({quasi-identifier with a ladder: level}),
    the first being every field at its own transform."""
    climbing = [q for q in anonymizer.ladder if q in anonymizer.quasi]
    levels = sorted(product(*(range(len(anonymizer.ladder[q]) + 1) for q in climbing)),
                    key=lambda node: (sum(node), [-level for level in node]))
    return [dict(zip(climbing, node, strict=True)) for node in levels]


def node_rung(anonymizer: Anonymizer, node: dict[str, int]) -> dict[str, str]:
    """A node as the rung plans and ledgers record ({quasi-identifier: rung label}, levels above 0 only)."""
    return {q: anonymizer.ladder[q][level - 1][0] for q, level in node.items() if level}


class NodeKeys:
    """Each record's equivalence class at any node of the ladder: its quasi-identifiers as text, a
    climbed field's value passed through the node's rung (columns computed once per field and level)."""

    def __init__(self, anonymizer: Anonymizer, records: list[dict[str, Any]]):
        self.anonymizer = anonymizer
        self.records = records
        self._columns: dict[tuple[str, int], Column] = {}

    def column(self, q: str, level: int) -> Column:
        if (q, level) not in self._columns:
            values = [record.get(q) for record in self.records]
            op = self.anonymizer.ladder[q][level - 1][1] if level else None
            self._columns[q, level] = [str(v) if op is None or v is None else str(op(v)) for v in values]
        return self._columns[q, level]

    def at(self, node: dict[str, int]) -> list[tuple[str, ...]]:
        return list(zip(*(self.column(q, node.get(q, 0)) for q in self.anonymizer.quasi), strict=True))


def below_k(sizes: Counter, k: int) -> int:
    """Records in classes smaller than k."""
    return sum(n for n in sizes.values() if n < k)


def _climb(anonymizer: Anonymizer, records: list[dict[str, Any]], refused: str) -> Judged:
    k = anonymizer.k
    keyed = NodeKeys(anonymizer, records)
    closest: tuple[int, dict[str, int]] | None = None
    for node in nodes(anonymizer)[1:]:  # the first is every field at its own transform: judged already
        keys = keyed.at(node)
        sizes = Counter(keys)
        small = below_k(sizes, k)
        if closest is None or small < closest[0]:
            closest = (small, node)
        if refusal(anonymizer, small, len(records)) is None:
            rung = node_rung(anonymizer, node)
            suppressed = {i for i, key in enumerate(keys) if sizes[key] < k} if small else set()
            return Judged(generalized(records, anonymizer.rung_ops(rung)), suppressed, None, rung)
    assert closest is not None
    small, node = closest
    best = rung_label(node_rung(anonymizer, node))
    return Judged(records, set(), f"{refused}; no rung of the generalization ladder is enough: the closest, {best}, "
                                  f"leaves {small} of {len(records)} ({small / len(records):.0%}) below k")


def generalized(records: list[dict[str, Any]], ops: dict[str, Callable[[Any], Any]]) -> list[dict[str, Any]]:
    """The records with each climbed field generalized in place (its position, hence the bytes' order, kept)."""
    out = []
    for record in records:
        changed = dict(record)
        for q, op in ops.items():
            value = changed.get(q)
            if value is not None:
                changed[q] = op(value)
        out.append(changed)
    return out
