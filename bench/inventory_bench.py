"""Planning from a generated S3 Inventory report: rows per second and peak memory.

Writes N rows (CSV.gz, AWS's format, rows in a scrambled order across files; streamed, so the
parent's memory does not grow with N) to a temp folder, then in a fresh child process each: (a)
the raw loop, gzip + csv parsing of every row and nothing else, and (b) vigil's path: the same
files read into rows, grouped by key with the external sort (runs spilled to a private scratch
directory) and fed to the retention planner (billing store of the repository policy; a quarter of
the versions expired). Peak RSS is the child's VmHWM; CPU is the child's user+system time (the
machine is shared, so wall time says more about the neighbours than about vigil).
Usage: python bench/inventory_bench.py [rows ...]  (default 1000000)
"""
from __future__ import annotations

import csv
import gzip
import math
import os
import resource
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
    """Two versions per key, ages either side of P7Y. Row i is written at position i * STRIDE mod rows
    (STRIDE coprime to rows): a scrambled order without holding the rows in memory."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    ages = [(now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for days in (30, 400, 3000, 3100)]
    stride = next(p for p in range(7_368_787, rows * 10 + 7_368_788) if math.gcd(p, rows) == 1)
    handles = [gzip.open(folder / f"{part:06d}", "wt", compresslevel=1, newline="") for part in range(FILES)]
    writers = [csv.writer(h, quoting=csv.QUOTE_ALL, lineterminator="\n") for h in handles]
    for position in range(rows):
        index = position * stride % rows
        obj = index // 2  # two versions per key
        writers[position % FILES].writerow(
            ["example-billing", f"invoices/s{obj % 1000}/inv-{obj}.json", f"v{index:012d}", "true" if index % 2 else "false",
             "false", "1234", ages[(index * 2654435761 >> 7) % 4], "0" * 32, "", "", "OFF"])
    for handle in handles:
        handle.close()


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
    from vigil.retention.s3_inventory import Report, Scratch, entries
    from vigil.retention.scan import store_rules

    from vigil.policy import load_policy

    policy = load_policy(ROOT / "policy.yaml")
    store = next(s for s in policy.stores if s.name == "billing")
    paths = sorted(folder.iterdir())
    report = Report("inv", "m.json", datetime(2026, 12, 1, tzinfo=UTC), "CSV", FIELDS, tuple({"key": p.name} for p in paths))
    summary = Summary("billing", "s3", "billing", "delete", "arn:aws:s3:::example-billing", "us-east-1")
    planner = Planner(store_rules(policy, store, datetime(2026, 12, 4, tzinfo=UTC), {}), store, RetentionKeys(b"k" * 32),
                      summary, None)
    loc = Location("billing", "example-billing", "us-east-1")
    actions = 0
    with Scratch() as scratch:  # the data files are removed as they are read (run vigil after raw)
        for entry in entries(report, paths, store.prefix, scratch):
            actions += len(planner.object(loc, entry))
    actions += len(planner.flush())
    return summary.scanned


def child(kind: str, folder: str) -> None:
    start = time.perf_counter()
    n = (raw if kind == "raw" else vigil)(Path(folder))
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would report the parent's peak.
    peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:")) / 1024
    print(f"{kind}\t{n}\t{wall:.2f}\t{usage.ru_utime + usage.ru_stime:.2f}\t{peak:.0f}")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
        return
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000]
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| rows | run | wall | CPU | rows/CPU-s | peak RSS |\n|---:|---|---:|---:|---:|---:|")
    for rows in sizes:
        with tempfile.TemporaryDirectory(prefix="vigil-inv-bench-") as folder:
            generate(rows, Path(folder))
            for kind in ("raw", "vigil"):  # vigil last: its path removes each data file once read
                out = subprocess.run([sys.executable, __file__, "--child", kind, folder], capture_output=True, text=True, check=True)
                _, n, wall, cpu, peak = out.stdout.split()
                print(f"| {rows:,} | {kind} | {float(wall):.1f} s | {float(cpu):.1f} s | {int(int(n) / float(cpu)):,} | {peak} MiB |",
                      flush=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
