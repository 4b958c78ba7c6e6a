"""Benchmark: `vigil retain --apply` on N object versions on a loopback moto server, against a raw
ListObjectVersions + DeleteObjects(1000) loop with the same concurrency; peak RSS per size.

    .venv/bin/python bench/retention_apply.py --sizes 10000 100000 --workers 16 [--buckets 10]

`--buckets N` spreads the versions over N stores (one bucket each): moto's ListObjectVersions
re-sorts the whole bucket for every page, so one bucket of 100,000 versions takes the
emulator tens of minutes to list, while AWS pages in constant time.

Prints figures; asserts nothing. Seeding goes straight into the in-process moto backend (fast,
not measured); every measured call goes over HTTP to 127.0.0.1.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import moto.s3.models as s3_models
from common import POLICY_HEAD, vigil_env
from moto.server import ThreadedMotoServer

BUCKET = "bench-retention"
POLICY = POLICY_HEAD + """categories:
  billing: {retain: P1D, action: delete}
stores:
"""


def buckets(n: int) -> list[str]:
    return [BUCKET] if n == 1 else [f"{BUCKET}-{i:02d}" for i in range(n)]


def policy_text(n: int) -> str:
    return POLICY + "".join(
        f"  - {{name: billing-{i:02d}, kind: s3, bucket: {name}, category: billing, layout: object}}\n"
        for i, name in enumerate(buckets(n)))


def seed(client, versions: int, n: int) -> None:
    """versions/2 keys with two versions each, spread over the buckets, written through the in-process backend."""
    from moto.s3.models import s3_backends
    names = buckets(n)
    for name in names:
        client.create_bucket(Bucket=name)
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    backend = s3_backends["123456789012"]["aws"]
    real_clock = s3_models.utcnow  # written two days ago, past P1D (a future --as-of may not --apply)
    s3_models.utcnow = lambda: real_clock() - timedelta(days=2)
    try:
        for i in range(versions // 2):
            key = f"p{i % 16:02d}/inv-{i:07d}.json"
            name = names[i % n]
            backend.put_object(name, key, b'{"v":1}')
            backend.put_object(name, key, b'{"v":2}')
    finally:
        s3_models.utcnow = real_clock


def count(client, n: int) -> int:
    total = 0
    for name in buckets(n):
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name):
            total += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
    return total


def raw_loop(client, workers: int, n: int) -> tuple[float, float]:
    """The baseline: list every version of every bucket, concurrently across buckets (deleting
    while paginating makes moto skip pages), then delete 1,000 per call on `workers` threads.
    No ledger, no plan, no verify."""
    start = time.perf_counter()

    def listing(name: str) -> list[tuple[str, list[dict]]]:
        out = []
        for page in client.get_paginator("list_object_versions").paginate(Bucket=name, PaginationConfig={"PageSize": 1000}):
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            if objects:
                out.append((name, objects))
        return out

    with ThreadPoolExecutor(workers) as pool:
        batches = [batch for found in pool.map(listing, buckets(n)) for batch in found]
    listed = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda b: client.delete_objects(Bucket=b[0], Delete={"Objects": b[1], "Quiet": True}), batches))
    end = time.perf_counter()
    return end - start, end - listed


def vigil(endpoint: str, workers: int, out: Path, policy: Path) -> tuple[float, float, int]:
    """(wall seconds, apply-phase seconds from the ledger, peak RSS KiB) of one retain --apply."""
    command = [sys.executable, "-m", "vigil", "retain", "--apply", "--policy", str(policy), "--output", str(out),
               "--endpoint-url", endpoint, "--workers", str(workers)]
    start = time.perf_counter()
    process = subprocess.Popen(command, env=vigil_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # VmHWM of the exec'd process. (wait4's ru_maxrss would count the pages of this big process
    # that the child shared between fork and exec, which grow with the seeded bucket.)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _hwm(process.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if process.returncode != 0:  # reported, not fatal: the figures say what happened
        print(f"  retain exit {process.returncode}: {process.stderr.read().decode()[-600:]}", flush=True)
    lines = (out / "ledger.jsonl").read_text().splitlines()
    stamps = [datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")) for line in (lines[0], lines[-1])]
    return wall, (stamps[1] - stamps[0]).total_seconds(), peak


def _hwm(pid: int) -> int:
    """Peak resident set (KiB) of a running process, from /proc; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--buckets", type=int, default=1, help="spread the versions over this many stores")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench").client(
        "s3", region_name="us-east-1", endpoint_url=endpoint,
        config=__import__("botocore.config").config.Config(max_pool_connections=args.workers * 2))
    work = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    policy = work / "policy.yaml"
    policy.write_text(policy_text(args.buckets))
    try:
        print(f"workers={args.workers} nproc={os.cpu_count()} buckets={args.buckets}")
        for size in args.sizes:
            seed(client, size, args.buckets)
            wall, apply_s, rss = vigil(endpoint, args.workers, work / f"run-{size}", policy)
            left = count(client, args.buckets)
            seed(client, size, args.buckets)
            raw, raw_delete = raw_loop(client, args.workers, args.buckets)
            raw_left = count(client, args.buckets)
            for name in buckets(args.buckets):
                client.delete_bucket(Bucket=name)
            print(f"versions={size}: vigil wall {wall:.1f}s ({size / wall:,.0f}/s), apply phase {apply_s:.1f}s "
                  f"({size / apply_s:,.0f}/s), peak RSS {rss / 1024:.0f} MiB, left {left}; "
                  f"raw loop {raw:.1f}s ({size / raw:,.0f}/s; its DeleteObjects phase {raw_delete:.1f}s), left {raw_left}; "
                  f"throughput vigil/raw: apply phase vs delete phase {raw_delete / apply_s:.2f}, "
                  f"end to end (plan+apply+verify vs list+delete) {raw / wall:.2f}", flush=True)
    finally:
        client.close()  # open keep-alive connections would hold the server's shutdown
        server.stop()


if __name__ == "__main__":
    main()
