"""`export`: what is held about one subject, as a package that can be handed to them.

One JSON file per store (the current data only, the subject's records alone: other people's
records in a shared object are never copied), and README.md, rendered from a Jinja template
like the evidence report, saying what each store is for, how long it is kept and why, and
where copies (replicas, backups) exist.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from vigil.evidence.render import md_escape
from vigil.policy import Policy

from .model import Found, StoreFound

SCHEMA = "vigil.subject-export/v1"
README = "README.md"


@cache
def environment() -> Environment:
    # Values are escaped for Markdown the way the evidence report escapes them.
    return Environment(loader=PackageLoader("vigil.subjects", "templates"), autoescape=False, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True, finalize=md_escape)


def file_name(store: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", store) + ".json"


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
    }


def export_subject(policy: Policy, found: Found, out_dir: Path, generated: datetime) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written, rows = [], []
    for store in found.stores:
        if not store.copies:
            continue
        package = store_package(policy, store)
        path = out_dir / file_name(store.store)
        path.write_text(json.dumps(package, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        written.append(path)
        rows.append({**package, "file": path.name, "count": len(package["records"]), "holds": store.holds()})
    context = {
        "organization": policy.organization, "generated": generated.strftime("%Y-%m-%d %H:%M UTC"), "stores": rows,
        "backups": [b.to_json() for b in found.backups],
        "deadline": f"{policy.requests.deadline.approx_days()} days" if policy.requests else "30 days",
    }
    readme = out_dir / README
    readme.write_text(environment().get_template("README.md.j2").render(context), encoding="utf-8")
    return [readme, *written]
