"""Benchmark: `vigil retain --apply` on N past-retention JSONL records (objects of 10,000
records in the repository policy's web-logs store), `--engine local` against `--engine spark`
(local[2]) on two identical worlds in one loopback moto server. Prints the wall time of each
run (plan + apply + verify; the plan and verify are the same code for both engines), the
SparkSession's start-up separately, the crossover this implies, and a Glue DPU-hour estimate
from the measured per-core throughput.

    .venv/bin/python bench/spark_bench.py --records 1000000

Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import base64
import logging
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import boto3
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from retention_anonymize import PER_OBJECT, ROOT, body  # noqa: E402 - the same records as the anonymize bench

from vigil.cli.main import main as vigil  # noqa: E402

BUCKET = "example-usage-logs"
GLUE_DPU_VCPU = 4  # G.1X: 1 DPU = 4 vCPU, 16 GB


def world(url: str, records: int) -> int:
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).read()
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=url)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    size = 0
    for n, offset in enumerate(range(0, records, PER_OBJECT)):
        raw = body(min(PER_OBJECT, records - offset), offset)
        size += len(raw)
        s3.put_object(Bucket=BUCKET, Key=f"web/{n:05d}.jsonl", Body=raw)
    return size


def run(url: str, engine: str, out: Path) -> tuple[float, int]:
    start = time.perf_counter()
    code = vigil(["retain", "--apply", "--policy", str(ROOT / "policy.yaml"), "--output", str(out), "--endpoint-url", url,
                  "--store", "web-logs", "--engine", engine, "--quiet"])
    return time.perf_counter() - start, code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", SPARK_LOCAL_IP="127.0.0.1",
                      PYSPARK_PYTHON=sys.executable, VIGIL_PSEUDONYM_KEY=base64.b64encode(os.urandom(32)).decode())
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per emulator request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="vigil-spark-bench-"))
    try:
        size = world(url, args.records)
        local, local_code = run(url, "local", tmp / "local")
        world(url, args.records)
        from pyspark.sql import SparkSession

        start = time.perf_counter()
        spark = SparkSession.builder.master("local[2]").appName("vigil-bench").config("spark.ui.enabled", "false") \
            .config("spark.driver.host", "127.0.0.1").getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
        spark.sparkContext.parallelize([0], 1).count()  # the Python workers started too
        session = time.perf_counter() - start
        clustered, spark_code = run(url, "spark", tmp / "spark")
        spark.stop()
    finally:
        server.stop()
    n = args.records
    print(f"records={n:,} ({size / 2**20:.0f} MiB, {-(-n // PER_OBJECT)} objects), 2 cores shared with the moto server:")
    print(f"  --engine local           {local:7.2f} s  ({n / local:,.0f} records/s, exit {local_code})")
    print(f"  --engine spark local[2]  {clustered:7.2f} s  ({n / clustered:,.0f} records/s, exit {spark_code}) "
          f"+ {session:.2f} s SparkSession start-up")
    fixed = session
    gain = 1 / (n / local) - 1 / (n / clustered)  # seconds per record the spark engine saves (negative: it loses)
    if gain > 0:
        print(f"  crossover: spark pays for its start-up above ~{fixed / gain:,.0f} records")
    else:
        print(f"  crossover: none on this machine (spark is {clustered / local:.2f}x the local run's time before "
              f"its {session:.1f} s start-up)")
    per_core = n / local  # one process, the GIL: about one core of record work
    tb_records = 2**40 / (size / n)
    core_hours = tb_records / per_core / 3600
    print(f"  Glue estimate: {size / n:.0f} B/record -> {tb_records:,.0f} records/TB; at {per_core:,.0f} records/core-s "
          f"that is {core_hours:,.0f} core-hours = {core_hours / GLUE_DPU_VCPU:,.0f} DPU-hours per TB "
          f"(x $0.44 = ${core_hours / GLUE_DPU_VCPU * 0.44:,.0f}/TB at the us-east-1 Glue rate)")


if __name__ == "__main__":
    main()
