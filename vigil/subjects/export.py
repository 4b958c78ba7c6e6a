"""`export`: what is held about one subject, as a package that can be handed to them.

One JSON file per store (the subject's records alone: other people's records in a shared
object are never copied): the current data, then every older version and replica copy that
`find` reports, each labelled with its version id and date. README.md, rendered from a Jinja
template like the evidence report, says what each store is for, how long it is kept and why,
where copies exist, which copies are not in the package (backups: whole snapshots) and
everything that makes the answer incomplete (stores not searched, records not readable).
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from vigil import safe_write
from vigil.evidence.render import md_escape
from vigil.policy import Policy
from vigil.timestamps import iso_z

from .model import Found, StoreFound

SCHEMA = "vigil.subject-export/v1"
README = "README.md"


@cache
def environment() -> Environment:
    # Values are escaped for Markdown the way the evidence report escapes them.
    return Environment(loader=PackageLoader("vigil.subjects", "templates"), autoescape=False, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, finalize=md_escape)


def file_names(stores: list[str]) -> dict[str, str]:
    """Store name -> its file: unique, even when two names clean to the same text or differ in case only."""
    taken, out = {README.lower()}, {}
    for store in stores:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", store)
        name, n = f"{base}.json", 2
        while name.lower() in taken:
            name, n = f"{base}-{n}.json", n + 1
        taken.add(name.lower())
        out[store] = name
    return out


def other_copies(store: StoreFound) -> list[dict[str, Any]]:
    """Older versions and replica copies, each with what identifies it; newest first."""
    others = [c for c in store.copies if not c.latest or c.replica]
    others.sort(key=lambda c: (c.replica, not c.latest, -(c.modified.timestamp() if c.modified else 0)))
    return [{"version_id": c.version_id or None, "written": iso_z(c.modified) if c.modified else None,
             "current": c.latest, "replica": c.replica, "region": c.region, "records": c.data} for c in others]


def store_package(policy: Policy, store: StoreFound) -> dict[str, Any]:
    category = policy.categories.get(store.category)
    data = [item for copy in store.copies if copy.latest and not copy.replica for item in copy.data]
    return {
        "schema": SCHEMA, "store": store.store, "kind": store.kind, "category": store.category,
        "description": category.description if category else store.category,
        "purpose": category.basis if category else None,
        "retention": None if category is None else (category.retain.text + (" after the account closes" if category.after else "")),
        "copies": {"current": sum(1 for c in store.copies if c.latest and not c.replica),
                   "older_versions": sum(1 for c in store.copies if not c.latest and not c.replica),
                   "replicas": sum(1 for c in store.copies if c.replica)},
        "records": data,
        "other_copies": other_copies(store),
        "incomplete": store.incomplete,
    }


def export_subject(policy: Policy, found: Found, out_dir: Path, generated: datetime) -> list[Path]:
    safe_write.ensure_dir(out_dir)
    written, rows = [], []
    names = file_names([s.store for s in found.stores if s.copies])
    for store in found.stores:
        if not store.copies:
            continue
        package = store_package(policy, store)
        path = out_dir / names[store.store]
        safe_write.write_text(path, json.dumps(package, indent=2, ensure_ascii=False, default=str) + "\n")
        written.append(path)
        rows.append({**package, "file": path.name, "count": len(package["records"]), "holds": store.holds(),
                     "other_count": len(package["other_copies"])})
    context = {
        "organization": policy.organization, "generated": generated.strftime("%Y-%m-%d %H:%M UTC"), "stores": rows,
        "backups": [b.to_json() for b in found.backups],
        "deadline": f"{policy.requests.deadline.approx_days()} days" if policy.requests else "30 days",
        "incomplete": found.incomplete,
    }
    readme = out_dir / README
    safe_write.write_text(readme, environment().get_template("README.md.j2").render(context))
    return [readme, *written]
