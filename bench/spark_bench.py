"""Benchmark: `vigil retain --apply` on N past-retention JSONL records (objects of --per-object
records in the repository policy's web-logs store), `--engine local` against `--engine spark`
(local[2]) on two identical worlds in one loopback moto server.

Each run is its own `vigil` process (the emulator stays in this one, as S3 would be elsewhere):
its wall time (plan + apply + verify: plan and verify are the same code for both engines), the
apply phase alone (first to last ledger line: the part the engine changes, SparkSession start-up
excluded), its CPU time, its peak RSS (VmHWM) and the peak RSS of its whole process tree (the
Spark JVM and Python workers included), plus a SparkSession start-up measured in a process of
its own. From these: the crossover, and Glue DPU-hours per TB from the measured per-core rate.

    .venv/bin/python bench/spark_bench.py --records 1000000 10000000

Memory is bounded by design (a 1M-record run of the first version was OOM-killed at ~20 GB):
the world is generated one object at a time; moto keeps object bodies on disk past
--moto-buffer bytes (MOTO_S3_DEFAULT_KEY_BUFFER_SIZE) instead of in this process's heap; and
moto's ListObjectVersions, which deep-copies every version of the bucket *with its body* on
every call (moto/s3/models.py), copies versions without their bodies here (the listing reads
none). Without that, each of vigil's per-rewrite listings copies the whole bucket: quadratic
time and, with 16 apply workers listing at once, memory of 16 buckets.

Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_bench import WRAP  # noqa: E402 - runs a module and reports its VmHWM
from retention_anonymize import PER_OBJECT, ROOT, body  # noqa: E402 - the same records as the anonymize bench

BUCKET = "example-usage-logs"
GLUE_DPU_VCPU = 4  # G.1X: 1 DPU = 4 vCPU, 16 GB
GLUE_DPU_HOUR_USD = 0.44  # us-east-1
SPARK_START = """
import time
start = time.perf_counter()
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[2]").appName("vigil-bench-start").getOrCreate()
spark.sparkContext.parallelize([0, 1], 2).count()  # the Python workers started too
print(f"BENCH_START {time.perf_counter() - start:.3f}")
spark.stop()
"""


def bodiless_listing() -> None:
    """moto's list_object_versions deep-copies each version, body included, per call; give its
    FakeKey a deepcopy that shares everything but the body (a listing reads no body). The ETag
    is computed first: moto derives it from the body on first use."""
    import moto.s3.models as s3_models

    def copy_without_body(self: Any, memo: dict) -> Any:
        _ = self.etag
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        new._value_buffer = tempfile.SpooledTemporaryFile()  # empty, its own: the copy's __del__ closes it
        new.lock = threading.Lock()
        return new

    s3_models.FakeKey.__deepcopy__ = copy_without_body


DISTINCT = 1_000_000  # records generated; larger worlds repeat these objects' bodies under new keys


def world(url: str, records: int, per_object: int) -> int:
    """A fresh emulator with N records in objects of `per_object`, generated one object at a time.
    Bodies past the first DISTINCT records repeat earlier ones (each object is planned and
    rewritten on its own, so only generation time changes; 10M distinct records took minutes)."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=300).read()
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=url)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    size = 0
    cycle = max(1, DISTINCT // per_object)
    bodies: dict[int, bytes] = {}
    for n, offset in enumerate(range(0, records, per_object)):
        count = min(per_object, records - offset)
        if count == per_object:
            raw = bodies.get(n % cycle) or bodies.setdefault(n % cycle, body(count, offset))
        else:
            raw = body(count, offset)
        size += len(raw)
        s3.put_object(Bucket=BUCKET, Key=f"web/{n:06d}.jsonl", Body=raw)
    return size


class Tree:
    """Peak RSS and CPU time of a process and all its descendants, sampled every 0.2 s: the Spark
    JVM and its Python workers are the vigil process's children, and nobody waits for them, so
    rusage alone would miss their CPU."""

    def __init__(self) -> None:
        self.peak = 0
        self.ticks: dict[int, int] = {}  # pid -> utime + stime last seen
        self.root: int | None = None
        threading.Thread(target=self._loop, daemon=True).start()

    def watch(self, pid: int) -> None:
        self.root, self.peak, self.ticks = pid, 0, {}

    @property
    def descendants_cpu(self) -> float:
        """CPU seconds of the watched process's descendants (its own is exact from rusage)."""
        return sum(t for pid, t in self.ticks.items() if pid != self.root) / os.sysconf("SC_CLK_TCK")

    def _loop(self) -> None:
        while True:
            time.sleep(0.2)
            if self.root is not None:
                self.peak = max(self.peak, self._sample(self.root))

    def _sample(self, root: int) -> int:
        stats: dict[int, list[str]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stats[int(entry)] = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
        children: dict[int, list[int]] = {}
        for pid, fields in stats.items():
            children.setdefault(int(fields[1]), []).append(pid)
        rss, todo = 0, [root]
        while todo:
            pid = todo.pop()
            todo += children.get(pid, [])
            if pid in stats:  # fields after the name: state ppid ... utime(12) stime(13) ... rss(22) pages
                fields = stats[pid]
                self.ticks[pid] = max(self.ticks.get(pid, 0), int(fields[11]) + int(fields[12]))
                rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        return rss


def run(url: str, engine: str, out: Path, env: dict[str, str], tree: Tree) -> dict[str, Any]:
    args = ["retain", "--apply", "--policy", str(ROOT / "policy.yaml"), "--output", str(out), "--endpoint-url", url,
            "--store", "web-logs", "--engine", engine, "--spark-master", "local[2]", "--quiet"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-c", WRAP, "module", "vigil", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tree.watch(process.pid)
    _, stderr = process.communicate()
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the vigil process, reaped: exact
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) + tree.descendants_cpu
    tree.root = None
    hwm = [line.split()[1] for line in stderr.splitlines() if line.startswith("BENCH_VmHWM")]
    return {"wall": wall, "cpu": cpu, "exit": process.returncode, "apply": _apply_seconds(out / "ledger.jsonl"),
            "rss": int(hwm[-1]) * 1024 if hwm else 0, "tree": tree.peak, "stderr": stderr}


def _apply_seconds(ledger: Path) -> float:
    """First to last ledger line: the apply phase (after the plan, before verify)."""
    if not ledger.exists():
        return float("nan")
    stamps = [datetime.fromisoformat(json.loads(line)["ts"]) for line in ledger.read_text().splitlines()]
    return (max(stamps) - min(stamps)).total_seconds()


def spark_start(env: dict[str, str]) -> float:
    out = subprocess.run([sys.executable, "-c", SPARK_START], env=env, capture_output=True, text=True, check=True)
    return float(next(line.split()[1] for line in out.stdout.splitlines() if line.startswith("BENCH_START")))


def crossover(records: int, local: dict[str, Any], spark: dict[str, Any], startup: float) -> None:
    print(f"  SparkSession start-up (JVM + Python workers, own process): {startup:.1f} s "
          f"(inside the spark run's wall time, outside its apply time)")
    saved = local["apply"] / records - spark["apply"] / records  # apply seconds per record spark saves
    if saved > 0:
        print(f"  crossover: spark's apply is {local['apply'] / spark['apply']:.2f}x faster; its {startup:.0f} s start-up "
              f"pays off above ~{startup / saved:,.0f} records on this machine")
    else:
        print(f"  crossover: none on this machine (spark's apply takes {spark['apply'] / local['apply']:.2f}x the "
              f"local engine's, before its {startup:.0f} s start-up)")


def one_size(url: str, records: int, per_object: int, env: dict[str, str], tree: Tree, engines: list[str]) -> None:
    results, build = {}, {}
    with tempfile.TemporaryDirectory(prefix="vigil-spark-bench-") as tmp:
        for engine in engines:
            start = time.perf_counter()
            size = world(url, records, per_object)
            build[engine] = time.perf_counter() - start
            results[engine] = run(url, engine, Path(tmp) / engine, env, tree)
    objects = -(-records // per_object)
    print(f"\nrecords={records:,} ({size / 2**20:,.0f} MiB in {objects:,} objects of {per_object:,}); "
          f"world built in {max(build.values()):.0f} s; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"  {'engine':<22} {'exit':>4} {'wall s':>8} {'records/s':>10} {'apply s':>8} {'apply rec/s':>11} "
          f"{'CPU s':>8} {'RSS MiB':>8} {'tree MiB':>8}")
    for engine, r in results.items():
        label = "local" if engine == "local" else "spark local[2]"
        print(f"  {label:<22} {r['exit']:>4} {r['wall']:>8.1f} {records / r['wall']:>10,.0f} {r['apply']:>8.1f} "
              f"{records / r['apply']:>11,.0f} {r['cpu']:>8.1f} {r['rss'] / 2**20:>8,.0f} {r['tree'] / 2**20:>8,.0f}")
        if r["exit"] not in (0, 1):
            print("    " + r["stderr"].strip()[-600:].replace("\n", "\n    "))
    if "spark" in results and "local" in results:
        crossover(records, results["local"], results["spark"], spark_start(env))
    if "local" not in results:
        return
    local = results["local"]
    per_core = records / local["cpu"]  # the local run's records per CPU-second (plan + apply + verify)
    tb_records = 2**40 / (size / records)
    core_hours = tb_records / per_core / 3600
    dpu_hours = core_hours / GLUE_DPU_VCPU
    print(f"  Glue: {size / records:.0f} B/record -> {tb_records / 1e9:.2f} billion records/TB; at {per_core:,.0f} records "
          f"per CPU-second (local run: plan + apply + verify) that is {core_hours:,.0f} core-hours = {dpu_hours:,.0f} "
          f"DPU-hours per TB (${dpu_hours * GLUE_DPU_HOUR_USD:,.0f}/TB at ${GLUE_DPU_HOUR_USD}/DPU-hour)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("records", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--engines", default="local,spark", help="comma-separated: local, spark")
    parser.add_argument("--per-object", type=int, default=PER_OBJECT)
    parser.add_argument("--moto-buffer", type=int, default=1 << 20,
                        help="bodies above this many bytes live in moto's temporary files, not its heap")
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", SPARK_LOCAL_IP="127.0.0.1",
                      PYSPARK_PYTHON=sys.executable, VIGIL_PSEUDONYM_KEY=base64.b64encode(os.urandom(32)).decode(),
                      MOTO_S3_DEFAULT_KEY_BUFFER_SIZE=str(args.moto_buffer))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator request otherwise
    bodiless_listing()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    tree = Tree()
    try:
        for records in args.records:
            one_size(f"http://{host}:{port}", records, args.per_object, env, tree, args.engines.split(","))
    finally:
        server.stop()
    hwm = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM:"))
    print(f"\nthis process (moto server, world generation): peak RSS {hwm / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()
