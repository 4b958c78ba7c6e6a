"""Planning from a generated S3 Inventory report: rows per second and peak memory.

Writes N rows (CSV.gz, AWS's format, shuffled across files) to a temp folder, then in a fresh
child process each: (a) the raw loop, gzip + csv parsing of every row and nothing else, and (b)
vigil's path: the same files read into Versions, grouped by key and fed to the retention planner
(billing store of the repository policy; a quarter of the objects expired). Peak RSS is the
child's VmHWM. Usage: python bench/inventory_bench.py [rows ...]  (default 1000000)
"""
from __future__ import annotations

import csv
import gzip
import io
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIELDS = ("Bucket", "Key", "VersionId", "IsLatest", "IsDeleteMarker", "Size", "LastModifiedDate", "ETag",
          "ObjectLockRetainUntilDate", "ObjectLockMode", "ObjectLockLegalHoldStatus")
FILES = 8


def generate(rows: int, folder: Path) -> None:
    rng = random.Random(7)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    lines = []
    for index in range(rows):
        obj = index // 2  # two versions per key
        age = timedelta(days=rng.choice([30, 400, 3000, 3100]))
        when = (now - age).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        lines.append(["example-billing", f"invoices/s{obj % 1000}/inv-{obj}.json", f"v{index:012d}",
                      "true" if index % 2 else "false", "false", "1234", when, "0" * 32, "", "", "OFF"])
    rng.shuffle(lines)
    for part in range(FILES):
        text = io.StringIO()
        csv.writer(text, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(lines[part::FILES])
        (folder / f"{part:06d}").write_bytes(gzip.compress(text.getvalue().encode(), compresslevel=1))


def raw(folder: Path) -> int:
    n = 0
    for path in sorted(folder.iterdir()):
        with gzip.open(path, "rt", newline="") as handle:
            for _row in csv.reader(handle):
                n += 1
    return n


def vigil(folder: Path) -> int:
    from vigil.retention.keys import RetentionKeys
    from vigil.retention.model import Location
    from vigil.retention.plan import Planner, Summary
    from vigil.retention.s3_inventory import Report, entries, versions_of
    from vigil.retention.scan import store_rules

    from vigil.policy import load_policy

    policy = load_policy(ROOT / "policy.yaml")
    store = next(s for s in policy.stores if s.name == "billing")
    report = Report("inv", "m.json", datetime.now(UTC), "CSV", FIELDS, ())
    summary = Summary("billing", "s3", "billing", "delete", "arn:aws:s3:::example-billing", "us-east-1")
    planner = Planner(store_rules(policy, store, datetime(2026, 12, 4, tzinfo=UTC), {}), store, RetentionKeys(b"k" * 32),
                      summary, None)
    loc = Location("billing", "example-billing", "us-east-1")
    actions = 0
    for entry in entries(versions_of(report, sorted(folder.iterdir())), store.prefix):
        actions += len(planner.object(loc, entry))
    actions += len(planner.flush())
    return summary.scanned


def child(kind: str, folder: str) -> None:
    start = time.perf_counter()
    n = (raw if kind == "raw" else vigil)(Path(folder))
    wall = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the parent's peak.
    peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:")) / 1024
    print(f"{kind}\t{n}\t{wall:.2f}\t{peak:.0f}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000]
    print("| rows | run | wall | rows/s | peak RSS |\n|---:|---|---:|---:|---:|")
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="vigil-inv-bench-") as folder:
            generate(rows, Path(folder))
            for kind in ("raw", "vigil"):
                out = subprocess.run([sys.executable, __file__, "--child", kind, folder], capture_output=True, text=True, check=True)
                _, n, wall, peak = out.stdout.split()
                print(f"| {rows:,} | {kind} | {float(wall):.2f} s | {int(int(n) / float(wall)):,} | {peak} MiB |")


if __name__ == "__main__":
    main()
