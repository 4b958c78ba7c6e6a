"""Resume after a crash: intents in the ledger that have no outcome are resolved against what
the stores hold now, so no action is lost and none is counted twice.

While the new run lists the stores, `observe` notes which of the dangling intents' targets
still exist (keyed hashes only). Then each dangling intent gets exactly one outcome:
all targets gone -> ok (done before the kill); none gone -> skipped (planned again);
some gone -> ok for the part done (the rest is in the new plan).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import ledger as ledgers
from .model import ObjectEntry


@dataclass
class Resume:
    intents: dict[str, dict[str, Any]]
    watched: set[str] = field(default_factory=set)  # keyed hashes of keys / items the intents name
    present: set[str] = field(default_factory=set)  # "hash:version" or item hashes seen now
    latest: dict[tuple[str, str], str] = field(default_factory=dict)  # (bucket, object hash) -> current version id
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def empty(cls) -> Resume:
        return cls({})

    @classmethod
    def load(cls, path: Path) -> Resume:
        """The dangling intents of this run folder's own ledger, and no other: a sibling folder's
        run is not this one's to finish or to count."""
        return cls.from_intents(ledgers.dangling(path))

    @classmethod
    def from_intents(cls, intents: dict[str, dict[str, Any]]) -> Resume:
        """Resume exactly these dangling intents (a caller that filters them, e.g. per subject)."""
        resume = cls(intents)
        for intent in resume.intents.values():
            target = intent.get("target", {})
            resume.watched.update(v.split(":", 1)[0] for v in target.get("versions", []))
            resume.watched.update(target.get("items", []))
            if "object" in target:
                resume.watched.add(target["object"])
        return resume

    def observe(self, location: str, hashed: str, entry: ObjectEntry | None) -> None:
        if hashed not in self.watched:
            return
        with self._lock:
            if entry is None:
                self.present.add(hashed)
                return
            for version in entry.versions:
                self.present.add(f"{hashed}:{version.version_id}")
                if version.is_latest:  # per bucket: a replica has the same key, with its own versions
                    self.latest[(location, hashed)] = version.version_id

    def resolve(self, ledger: ledgers.Ledger, seen_stores: set[str] | None = None) -> int:
        """Write one outcome for every dangling intent of a store this run read in full (an intent
        of a store not read, or not readable, stays open: absence there proves nothing)."""
        done = 0
        for intent in self.intents.values():
            if seen_stores is not None and intent.get("store") not in seen_stores:
                continue
            outcome, target, detail = self._judge(intent)
            ledger.write("outcome", intent, target, outcome, {"resumed": True, **detail})
            done += 1
        return done

    def _judge(self, intent: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        target = dict(intent.get("target", {}))
        if intent["action"] in ("anonymize_object", "rewrite_object"):
            raw = f"{target['object']}:{target['version']}"
            if raw not in self.present:
                return "ok", target, {"note": "completed before the interruption; the raw version is gone"}
            bucket = str(target.get("location", "")).removeprefix("arn:aws:s3:::")
            if self.latest.get((bucket, target["object"])) != target["version"]:
                return "ok", target, {"note": "rewritten before the interruption; deleting the raw version is planned again"}
            return "skipped", target, {"note": "not done before the interruption; planned again"}
        names = target.get("versions") or target.get("items")
        if names is None:
            return "skipped", target, {"note": "outcome unknown after the interruption; planned again if still due"}
        left = [n for n in names if n in self.present]
        done = len(names) - len(left)
        target["count"] = done
        if done == 0:
            return "skipped", target, {"note": "not done before the interruption; planned again"}
        note = "completed before the interruption" if not left else f"{len(left)} targets remained and are planned again"
        return "ok", target, {"note": note, "done": done}
