"""Benchmark: anonymizing N JSONL records (parse, age, transform, k-anonymity, serialize) with the
repository policy's usage_logs category, against a bare json.loads + json.dumps loop. Local, no S3.

    .venv/bin/python bench/retention_anonymize.py --records 1000000

Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.retention.anonymize import new_body, rewrite
from vigil.retention.decide import Rules
from vigil.retention.inventory import Version
from vigil.retention.records import parse
from vigil.retention.transforms import Anonymizer

from vigil.policy import load_policy

ROOT = Path(__file__).resolve().parent.parent
PER_OBJECT = 10_000


def body(n: int, offset: int) -> bytes:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    lines = []
    for i in range(offset, offset + n):
        lines.append(json.dumps({
            "ip": f"203.0.{(i // 50) % 256}.{i % 256}", "ts": (start + timedelta(seconds=i * 7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "account_id": f"acct-{i % 5000}", "email": f"u{i}@example.com",
            "path": f"/page/{i % 97}", "status": 200, "referrer": "https://example.com/"}))
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the peak heap in a second pass (slower under tracemalloc)")
    args = parser.parse_args()
    policy = load_policy(ROOT / "policy.yaml")
    store = next(s for s in policy.stores if s.name == "web-logs")
    category = policy.category_of(store)
    rules = Rules.for_store(policy, store.name, category, datetime(2100, 1, 1, tzinfo=UTC), {})
    anonymizer = Anonymizer(category, b"k" * 32)
    bodies = [body(min(PER_OBJECT, args.records - o), o) for o in range(0, args.records, PER_OBJECT)]

    def anonymize_all() -> tuple[int, int]:
        out_records = suppressed = 0
        for raw in bodies:
            version = Version("web/x.jsonl", "v", True, False, rules.as_of)
            version.parsed = parse(raw, version.key, "jsonl", store.timestamp_field, store.subject_field)
            result = rewrite(rules, store, version, anonymizer, False, remove=False)
            new_body(result, version, store)
            out_records += result.n("anonymize")
            suppressed += result.n("suppress")
        return out_records, suppressed

    start = time.perf_counter()
    out_records, suppressed = anonymize_all()
    vigil = time.perf_counter() - start

    start = time.perf_counter()
    for raw in bodies:
        "\n".join(json.dumps(json.loads(line)) for line in raw.decode().splitlines()).encode()
    bare = time.perf_counter() - start
    print(f"records={args.records}: vigil {vigil:.2f}s ({args.records / vigil:,.0f} records/s; {out_records} anonymized, "
          f"{suppressed} suppressed) vs bare json loop {bare:.2f}s ({args.records / bare:,.0f} records/s): "
          f"vigil takes {vigil / bare:.1f}x the bare loop", flush=True)
    if args.memory:  # a second, untimed pass: the heap vigil allocates beyond the input bodies
        tracemalloc.start()
        anonymize_all()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"peak heap while anonymizing (tracemalloc, input excluded): {peak / 2**20:.1f} MiB "
              f"({len(bodies)} objects of up to {PER_OBJECT:,} records)")


if __name__ == "__main__":
    main()
