"""`erase`: turn what `find` found into retention actions and run them with retention's Applier.

Whole versions and items are deleted (every version, every replica; delete markers of a key
that is gone entirely); shared objects are rewritten without the subject's records (or with
them anonymized) and the raw version permanently deleted. Held data is never in an action.
Every intent and outcome goes to retention's hash-chained ledger with the subject as a keyed
hash; a crash mid-erase leaves intents that the next run resolves against what it finds.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vigil import __version__, safe_write
from vigil.aws import Aws
from vigil.policy import Policy, S3Store
from vigil.policy.models import RDSStore
from vigil.retention import ledger as ledgers
from vigil.retention.apply import Applier, Stats
from vigil.retention.guard import JUDGED_AT, refuse_future_as_of
from vigil.retention.keys import RetentionKeys
from vigil.retention.locks import run_locks
from vigil.retention.plan import S3_BATCH, action_id
from vigil.retention.postgres import PostgresRetention, is_postgres_action
from vigil.retention.resume import Resume
from vigil.timestamps import iso_z

from .decide import SubjectRules, store_rules, subject_anonymizer
from .locate import find_subject
from .model import Found, StoreFound
from .rows import apply_erase, erase_actions

SCHEMA = "vigil.subject-erase/v1"
PLAN_FILE, LEDGER_FILE = "subject-erase.json", "ledger.jsonl"
HashKey = Callable[[str], str]  # RetentionKeys.hash: the keyed hash that stands in for keys in evidence


class SubjectLedger:
    """Retention's ledger, every target stamped with the subject's keyed hash."""

    def __init__(self, ledger: ledgers.Ledger, subject_hash: str):
        self.ledger, self.subject_hash = ledger, subject_hash

    def write(self, phase: str, action: dict[str, Any], target: dict[str, Any], outcome: str | None = None, detail: Any = None) -> None:
        self.ledger.write(phase, action, {**target, "subject": self.subject_hash}, outcome, detail)


def _with_id(action: dict[str, Any]) -> dict[str, Any]:
    action["action_id"] = action_id(action)
    return action


def plan_actions(found: Found) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = []
    for store in found.stores:
        deletes: dict[tuple[str, str], list[tuple[str, str, int]]] = {}
        items: dict[tuple[str, str], list[str]] = {}
        for copy in store.copies:
            if not copy.erase or copy.kind == "row":  # table rows: erase_actions below
                continue
            if copy.kind == "item":
                items.setdefault((copy.location, copy.region), []).append(copy.key)
            elif copy.whole:
                deletes.setdefault((copy.location, copy.region), []).append((copy.key, copy.version_id, copy.bytes))
            else:
                kind = "anonymize_object" if store.action == "anonymize" else "rewrite_object"
                actions.append(_with_id({"action": kind, "store": store.store, "location": copy.location, "region": copy.region,
                                         "object": copy.key, "version_id": copy.version_id, "counts": copy.counts}))
        _markers(store, deletes)
        for (bucket, region), batch in deletes.items():
            for start in range(0, len(batch), S3_BATCH):
                part = batch[start:start + S3_BATCH]
                actions.append(_with_id({"action": "delete_versions", "store": store.store, "location": bucket, "region": region,
                                         "objects": [[k, v] for k, v, _ in part], "count": len(part), "bytes": sum(b for _, _, b in part)}))
        for (table, region), keys in items.items():
            actions.append(_with_id({"action": "delete_items", "store": store.store, "location": table, "region": region,
                                     "items": keys, "count": len(keys), "bytes": 0}))
        actions += [_with_id(a) for a in erase_actions(store)]
    return actions


def _markers(store: StoreFound, deletes: dict[tuple[str, str], list[tuple[str, str, int]]]) -> None:
    """Delete markers go too when every data version of their key goes: nothing of the key is left."""
    for bucket, region, key, version in store.markers:
        kept = [c for c in store.copies if c.location == bucket and c.key == key and not c.erase]
        if not kept:
            deletes.setdefault((bucket, region), []).append((key, version, 0))


@dataclass
class EraseRun:
    run_id: str
    subject_hash: str
    apply: bool
    found: Found
    actions: int = 0
    stats: Stats | None = None
    resumed: int = 0
    after: Found | None = None
    verify: dict[str, Any] = field(default_factory=lambda: {"status": "not_run", "remaining": 0})

    @property
    def nothing_found(self) -> bool:
        """Nothing found where everything was searched: "no data found" is true only then."""
        return self.found.copies == 0 and not self.found.incomplete

    @property
    def exit_code(self) -> int:
        """0 only when every store was searched, every record read and every action done: a request is
        marked done on 0 alone (a store not searched can still hold the person's data)."""
        failed = bool(self.stats and self.stats.failed)
        return 1 if (self.nothing_found or failed or self.found.incomplete or (self.apply and self.verify["status"] != "pass")) else 0

    def to_json(self, policy: Policy, hash_key: HashKey | None = None) -> dict[str, Any]:
        now = self.after or self.found
        return {
            "schema": SCHEMA,
            "run": {"id": self.run_id, "as_of": iso_z(self.found.as_of), "mode": "apply" if self.apply else "dry-run",
                    "policy_sha256": policy.sha256, "tool_version": __version__, "judged_at": JUDGED_AT},
            "subject": self.subject_hash,
            "planned": {"actions": self.actions, "erase": self.found.erasable, "held": self.found.held},
            "complete": not self.found.incomplete, "incomplete": self.found.incomplete,
            "stores": [{**s.to_json(), "targets": targets(s, hash_key)} for s in self.found.stores],
            "backups": [b.to_json() for b in now.backups],
            "outcome": None if self.stats is None else {"ok": self.stats.ok, "failed": self.stats.failed, "skipped": self.stats.skipped,
                                                        "resumed": self.resumed, "done": self.stats.done},
            "verify": self.verify,
        }


def default_output(subject_hash: str) -> Path:
    """One folder per subject, so a second run (after a crash) continues the same ledger."""
    return Path("evidence") / "subjects" / subject_hash[:16]


def erase_subject(aws: Aws, policy: Policy, keys: RetentionKeys, subject: str, as_of: datetime, out_dir: Path, run_id: str,
                  apply: bool = False, workers: int = 16, lock_bucket: str | None = None) -> EraseRun:
    """Find, plan and (with apply) erase. It holds the same locks as a retention run: its folder's,
    and with apply every store's (a retention run changing a store at the same time would plan
    from what this erase is changing); a lock taken elsewhere exits 3 before anything changes."""
    refuse_future_as_of(as_of, apply)
    stores = [s for s in policy.stores if not isinstance(s, RDSStore)]
    s3 = aws.client("s3", policy.regions.primary) if apply and lock_bucket else None
    with run_locks(out_dir, stores, apply, s3, lock_bucket):
        return _erase(aws, policy, keys, subject, as_of, out_dir, run_id, apply, workers)


def _erase(aws: Aws, policy: Policy, keys: RetentionKeys, subject: str, as_of: datetime, out_dir: Path, run_id: str,
           apply: bool, workers: int) -> EraseRun:
    subject_hash = keys.hash(subject)
    ledger_path = out_dir / LEDGER_FILE
    resume = Resume.empty()
    if apply:  # before anything is read: a ledger of another policy or key is never continued
        ledgers.check_owner(ledger_path, policy.sha256, keys.fingerprint)
        mine = {k: v for k, v in ledgers.dangling(ledger_path).items() if v.get("target", {}).get("subject") == subject_hash}
        resume = Resume.from_intents(mine)
    found = find_subject(aws, policy, keys, subject, as_of, workers, observe=resume.observe)
    actions = plan_actions(found)
    run = EraseRun(run_id, subject_hash, apply, found, actions=len(actions))
    if apply and (actions or resume.intents):
        ledger = ledgers.Ledger(ledger_path, run_id, policy.sha256, keys.fingerprint)
        try:
            # Only stores read in full this run can prove an intent done (absence elsewhere proves nothing).
            subject_ledger = SubjectLedger(ledger, subject_hash)
            run.resumed = PostgresRetention(aws, policy, keys, as_of).resolve(ledger, resume.intents)  # asks the server
            run.resumed += resume.resolve(ledger, {s.store for s in found.stores if not s.errors and not s.note})
            run.stats = Applier(aws, keys, subject_ledger, _contexts(policy, keys, subject, as_of).__getitem__,
                                workers).run(a for a in actions if not is_postgres_action(a))
            tables = [a for a in actions if is_postgres_action(a)]
            if tables:
                apply_erase(aws, policy, keys, subject, as_of, subject_ledger, tables, run.stats)
        finally:
            ledger.close()
    if apply:
        run.after = find_subject(aws, policy, keys, subject, as_of, workers)
        left = run.after.erasable
        status = "fail" if left else "incomplete" if run.after.incomplete else "pass"
        run.verify = {"status": status, "remaining": left, "incomplete": run.after.incomplete}
    write(run, policy, out_dir, keys.hash)
    return run


def _contexts(policy: Policy, keys: RetentionKeys, subject: str, as_of: datetime) -> dict[str, tuple]:
    """store name -> (store, rules, anonymizer) for the Applier: the subject's records are the ones due."""
    out = {}
    for store in policy.stores:
        category = policy.category_of(store)
        whole = isinstance(store, S3Store) and store.subject_from_key is not None
        rules = SubjectRules(subject, store_rules(policy, store.name, category, as_of), whole=whole)
        out[store.name] = (store, rules, subject_anonymizer(category, keys.pseudonym))
    return out


def targets(store: StoreFound, hash_key: HashKey | None) -> list[dict[str, Any]]:
    """Each copy as the plan's evidence: object keys and item keys as keyed hashes only."""
    if hash_key is None:
        return []
    out = []
    for copy in store.copies:
        what = ("delete" if copy.whole else store.action if store.action == "anonymize" else "rewrite") if copy.erase else "keep"
        out.append({"location": copy.location, "region": copy.region, "replica": copy.replica, "target": hash_key(copy.key),
                    "version": copy.version_id or None, "latest": copy.latest, "records": copy.records, "erase": copy.erase,
                    "action": what, "held": [{"reason": r, "until": u.isoformat() if u else None, "count": n} for r, u, n, _ in copy.held]})
    return out


def write(run: EraseRun, policy: Policy, out_dir: Path, hash_key: HashKey | None = None) -> Path:
    return safe_write.write_text(out_dir / PLAN_FILE, json.dumps(run.to_json(policy, hash_key), indent=2) + "\n")

