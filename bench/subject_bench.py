"""Benchmark: `vigil subject find` over many gzip JSONL objects on a loopback moto server, against a
raw concurrent ListObjectVersions + GetObject + gunzip + scan loop with the same concurrency.

    .venv/bin/python bench/subject_bench.py --mib 50 200 --workers 16

Both run as subprocesses (the emulator keeps this process's cores to itself otherwise), end to
end including interpreter start-up; peak RSS per run shows whether memory stays flat as the data
grows. Seeding goes straight into the in-process moto backend (not measured). Prints figures;
asserts nothing.
"""
from __future__ import annotations

import argparse
import gzip
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import POLICY_HEAD, vigil_env

BUCKET = "bench-subject-logs"
SUBJECT = "acct-0000042"
OBJECT_KIB = 512  # uncompressed JSONL per object
POLICY = POLICY_HEAD + """categories:
  usage_logs: {retain: P90D, action: delete}
stores:
  - {name: logs, kind: s3, bucket: bench-subject-logs, prefix: web/, category: usage_logs, layout: jsonl,
     timestamp_field: ts, subject_field: account_id}
"""


def body(index: int, rng: random.Random) -> bytes:
    """~OBJECT_KIB of log records; the subject appears in every 50th object."""
    lines, size, n = [], 0, 0
    while size < OBJECT_KIB * 1024:
        who = SUBJECT if (index % 50 == 0 and n == 7) else f"acct-{rng.randrange(10**6):07d}"
        line = json.dumps({"ip": f"198.51.100.{rng.randrange(256)}", "ts": "2026-11-01T12:00:00Z", "account_id": who,
                           "path": f"/p/{rng.randrange(10**5)}", "status": 200, "user_agent": "Mozilla/5.0 (bench)"})
        lines.append(line)
        size += len(line) + 1
        n += 1
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6, mtime=0)


def seed(client, mib: int) -> tuple[int, int]:
    from moto.s3.models import s3_backends

    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    backend = s3_backends["123456789012"]["aws"]
    rng = random.Random(7)
    objects = mib * 1024 // OBJECT_KIB
    stored = 0
    for i in range(objects):
        data = body(i, rng)
        stored += len(data)
        backend.put_object(BUCKET, f"web/{i % 16:02d}/log-{i:06d}.jsonl.gz", data)
    return objects, stored


def raw_loop(endpoint: str, workers: int) -> int:
    """The baseline: list every version, then GetObject + gunzip + scan on `workers` threads,
    counting the subject's records. No policy, holds, replicas or evidence."""
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint, config=Config(max_pool_connections=workers * 2))
    needle = SUBJECT.encode()

    def scan(version: dict) -> int:
        data = s3.get_object(Bucket=BUCKET, Key=version["Key"], VersionId=version["VersionId"])["Body"].read()
        text = gzip.decompress(data)
        if needle not in text:
            return 0
        return sum(1 for line in text.splitlines() if needle in line and json.loads(line).get("account_id") == SUBJECT)

    pages = s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix="web/")
    versions = (v for page in pages for v in page.get("Versions", []))
    with ThreadPoolExecutor(workers) as pool:
        return sum(pool.map(scan, versions))


def child(kind: str, endpoint: str, workers: int, policy: str) -> None:
    """One measured run in its own process: prints {"seconds": work only, "records": n}."""
    if kind == "vigil":
        from vigil.retention.keys import load_keys

        from vigil.aws import Aws
        from vigil.cli.common import parse_as_of
        from vigil.policy import load_policy
        from vigil.subjects.locate import find_subject

        loaded = load_policy(policy)
        if os.environ.get("BENCH_TRACEMALLOC"):  # Python-level peak (slows the run: not for timing)
            import tracemalloc
            tracemalloc.start()
        start = time.perf_counter()
        aws = Aws(endpoint_url=endpoint)
        found = find_subject(aws, loaded, load_keys(loaded, aws), SUBJECT, parse_as_of(None), workers)
        records = sum(c.records for c in found.stores[0].copies)
        if os.environ.get("BENCH_TRACEMALLOC"):
            import resource
            print(f"python heap peak {tracemalloc.get_traced_memory()[1] / 2**20:.0f} MiB, "
                  f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", file=sys.stderr)
    else:
        import boto3  # noqa: F401 - imported before the clock starts, as vigil's modules are

        start = time.perf_counter()
        records = raw_loop(endpoint, workers)
    print(json.dumps({"seconds": time.perf_counter() - start, "records": records}))


def timed(command: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS KiB, stdout) of one subprocess."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=vigil_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout = process.stdout.read().decode()
    _, status, usage = os.wait4(process.pid, 0)
    if os.environ.get("BENCH_TRACEMALLOC"):
        sys.stdout.write(process.stderr.read().decode())
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{command[:4]} failed: {process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss, stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, nargs="+", default=[50, 200], help="uncompressed JSONL per run")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="best of this many rounds per size")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "ENDPOINT", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.workers, args.child[2])
        return
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    client = boto3.Session(aws_access_key_id="bench", aws_secret_access_key="bench").client(
        "s3", region_name="us-east-1", endpoint_url=endpoint)
    work = Path(tempfile.mkdtemp(prefix="vigil-subject-bench-"))
    policy = work / "policy.yaml"
    policy.write_text(POLICY)
    vigil = [sys.executable, "-m", "vigil", "subject", "find", SUBJECT, "--json", "--policy", str(policy),
             "--endpoint-url", endpoint, "--region", "us-east-1", "--workers", str(args.workers)]
    me = [sys.executable, str(Path(__file__).resolve()), "--workers", str(args.workers), "--child"]
    try:
        print(f"workers={args.workers} nproc={os.cpu_count()} object={OBJECT_KIB} KiB uncompressed (gzip JSONL)")
        for mib in args.mib:
            objects, stored = seed(client, mib)
            best: dict[str, tuple] = {}
            for _ in range(args.rounds):
                for name, command in (("vigil e2e", vigil), ("vigil", me + ["vigil", endpoint, str(policy)]),
                                      ("raw", me + ["raw", endpoint, str(policy)])):
                    wall, rss, out = timed(command)
                    work = wall if name == "vigil e2e" else json.loads(out)["seconds"]
                    if name not in best or work < best[name][0]:
                        best[name] = (work, rss, out, wall)
            e2e, find, raw = best["vigil e2e"], best["vigil"], best["raw"]
            records = json.loads(find[2])["records"]
            assert records == json.loads(raw[2])["records"] == json.loads(e2e[2])["stores"][0]["records"]
            print(f"{mib} MiB ({objects} objects, {stored / 2**20:.1f} MiB stored), {records} records found:\n"
                  f"  vigil find (work) {find[0]:.2f}s = {mib / find[0]:.1f} MiB/s, peak RSS {find[1] / 1024:.0f} MiB\n"
                  f"  raw loop   (work) {raw[0]:.2f}s = {mib / raw[0]:.1f} MiB/s, peak RSS {raw[1] / 1024:.0f} MiB\n"
                  f"  vigil subject find end to end (CLI start-up included) {e2e[0]:.2f}s, peak RSS {e2e[1] / 1024:.0f} MiB; "
                  f"raw end to end {raw[3]:.2f}s\n"
                  f"  throughput vigil/raw: work {raw[0] / find[0]:.2f}, end to end {raw[3] / e2e[0]:.2f}")
            pages = client.get_paginator("list_object_versions").paginate(Bucket=BUCKET)
            listed = [{"Key": v["Key"], "VersionId": v["VersionId"]} for page in pages for v in page.get("Versions", [])]
            for start in range(0, len(listed), 1000):  # listed first: deleting while paginating makes moto skip pages
                client.delete_objects(Bucket=BUCKET, Delete={"Objects": listed[start:start + 1000], "Quiet": True})
            client.delete_bucket(Bucket=BUCKET)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
