"""The plan for one DynamoDB store: a pure function of (policy, items, as-of), fed one item at a time.

Delete categories: expired items go 1,000 to an action (apply writes 25 per BatchWriteItem).
Anonymize categories: expired items are gathered 1,000 at a time; k-anonymity is verified on
that batch (items in classes below k are suppressed, i.e. deleted; too many and the batch is
refused and left as it is). Apply writes each action as one TransactWriteItems (up to 100
writes, all or none), and every action holds whole equivalence classes (or pieces of at least
k of a large one): whatever one action does, or fails to do, no class below k is published.
"""
from __future__ import annotations

import json
from typing import Any

from .decide import EXPIRED, KEEP, Rules
from .items import digest, fields, key_problem
from .kanon import judge
from .keys import RetentionKeys
from .model import Item, TableInfo
from .plan import Summary, action_id, tally
from .transforms import Anonymizer

DELETE_BATCH = 1000
ANONYMIZE_BATCH = 1000  # items judged together for k-anonymity
TRANSACTION = 100  # writes in one TransactWriteItems
TRANSACTION_BYTES = 3_500_000  # of the 4 MB a transaction may carry, with room for keys and conditions


def key_text(key: dict[str, Any]) -> str:
    return json.dumps(key, sort_keys=True)


class ItemPlanner:
    """Plans one table. Feed it items; call `flush()` at the end for the last batches."""

    def __init__(self, rules: Rules, store, keys: RetentionKeys, summary: Summary, anonymizer: Anonymizer | None,
                 info: TableInfo):
        self.rules = rules
        self.store = store
        self.keys = keys
        self.summary = summary
        self.anonymizer = anonymizer if rules.category.action == "anonymize" else None
        self.info = info
        self.problem, moves = key_problem(self.anonymizer, info.key_names, info.key_types) if self.anonymizer else (None, False)
        self._reported = False
        self.per_action = TRANSACTION // (2 if moves else 1)  # an item moved to a new key is two writes
        self._deletes: list[tuple[str, int]] = []  # (key, bytes)
        self._anonymize: list[tuple[str, str, dict[str, Any], int]] = []  # (key, digest, anonymized record, bytes)
        self._unnamed: dict[str, int] = {}  # of the pending batch

    def item(self, item: Item) -> list[dict[str, Any]]:
        self.summary.scanned += 1
        if item.anonymized:
            self.summary.add("keep", 1, item.size)
            return []
        d = None if item.error is not None else self.rules.decide(item.ts, item.subject)
        if d is not None and d.verdict == KEEP:  # the common case: no key to hash, nothing to plan
            self.summary.add("keep", 1, item.size)
            return []
        text = key_text(item.key)
        target = self.keys.hash(text)
        if d is None:
            self.summary.error(target, str(item.error), 1, item.size)
            return []
        if d.verdict == EXPIRED and self.anonymizer is not None:
            self.summary.expired(d.start, target)
            return self._to_anonymize(item, text)
        if not tally(self.summary, d, item.size, target):
            return []
        self._deletes.append((text, item.size))
        return [self._delete_batch()] if len(self._deletes) >= DELETE_BATCH else []

    def _to_anonymize(self, item: Item, text: str) -> list[dict[str, Any]]:
        assert self.anonymizer is not None and item.raw is not None
        if self.problem is not None:
            if not self._reported:  # one line for the store; every item is counted
                self._reported = True
                self.summary.error(f"{self.summary.resource} (key schema)", self.problem, 0)
            self.summary.add("error", 1, item.size)
            self.summary.stuck += 1
            return []
        plain = fields(item.raw)
        self._anonymize.append((text, digest(item.raw), self.anonymizer.record(plain), item.size))
        self.anonymizer.unnamed(plain, self._unnamed)
        return self._anonymize_batch() if len(self._anonymize) >= ANONYMIZE_BATCH else []

    def _delete_batch(self) -> dict[str, Any]:
        pending, self._deletes = self._deletes, []
        action = {
            "action": "delete_items", "store": self.store.name, "location": self.info.table, "region": self.info.region,
            "items": [key for key, _ in pending], "count": len(pending), "bytes": sum(size for _, size in pending),
        }
        action["action_id"] = action_id(action)
        return action

    def _anonymize_batch(self) -> list[dict[str, Any]]:
        """The pending batch as transaction-sized actions, or none when k-anonymity refuses it."""
        assert self.anonymizer is not None
        pending, self._anonymize = self._anonymize, []
        unnamed, self._unnamed = self._unnamed, {}
        judged = judge(self.anonymizer, [rec for _, _, rec, _ in pending])
        records, suppressed, refused = judged.records, judged.suppressed, judged.refused
        if refused is not None:  # left raw and counted as still past retention
            self.summary.error(self.keys.hash(pending[0][0]), f"batch of {len(pending)} items: {refused}", 0)
            self.summary.add("error", len(pending), sum(size for *_, size in pending))
            self.summary.stuck += len(pending)
            return []
        self.summary.dropped(unnamed)
        self.summary.climbed(judged.rung)
        for index, (_, _, _, size) in enumerate(pending):
            self.summary.add("suppress" if index in suppressed else "anonymize", 1, size)
        kept = [members for members in self.anonymizer.classes(records) if len(members) >= self.anonymizer.k or
                not self.anonymizer.quasi]
        largest = max(size for *_, size in pending)
        cap = max(1, min(self.per_action, TRANSACTION_BYTES // max(largest, 1)))  # large items: fewer per transaction
        groups = pack(pieces(kept, cap, self.anonymizer.k), sorted(suppressed), cap)
        return [self._anonymize_action([pending[i] for i in group], suppressed & set(group), group, judged.rung) for group in groups]

    def _anonymize_action(self, chosen: list[tuple[str, str, dict[str, Any], int]], suppressed: set[int],
                          group: list[int], rung: dict[str, str]) -> dict[str, Any]:
        positions = [pos for pos, index in enumerate(group) if index in suppressed]
        action = {
            "action": "anonymize_items", "store": self.store.name, "location": self.info.table, "region": self.info.region,
            "items": [key for key, *_ in chosen], "digests": [d for _, d, _, _ in chosen],
            "suppress": positions, "count": len(chosen), "bytes": sum(size for *_, size in chosen),
            "counts": {"anonymize": len(chosen) - len(positions), "suppress": len(positions)},
        }
        if rung:  # the batch's ladder rung: apply writes each item generalized so (apply.py, items.py)
            action["generalization"] = rung
        action["action_id"] = action_id(action)
        return action

    def flush(self) -> list[dict[str, Any]]:
        out = [self._delete_batch()] if self._deletes else []
        if self._anonymize:
            out += self._anonymize_batch()
        return out


def pieces(classes: list[list[int]], cap: int, k: int) -> list[list[int]]:
    """Classes as they fit in one action: a class larger than `cap` is cut into near-equal
    pieces (each of at least k whenever k <= cap // 2)."""
    out = []
    for members in classes:
        n = -(-len(members) // cap)  # ceil
        size = -(-len(members) // n)
        out += [members[start:start + size] for start in range(0, len(members), size)]
    return out


def pack(parts: list[list[int]], loose: list[int], cap: int) -> list[list[int]]:
    """Whole parts into actions of at most `cap` items (first fit, largest first); `loose` items
    (suppressed: deleted, in no class) fill the gaps and then actions of their own."""
    actions: list[list[int]] = []
    for part in sorted(parts, key=len, reverse=True):
        home = next((a for a in actions if len(a) + len(part) <= cap), None)
        if home is None:
            actions.append(list(part))
        else:
            home += part
    for index in loose:
        home = next((a for a in actions if len(a) < cap), None)
        if home is None:
            actions.append([index])
        else:
            home.append(index)
    return [sorted(a) for a in actions]
