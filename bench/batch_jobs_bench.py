"""`--executor batch-operations` on vigil's side: building a job's manifest, and reading its completion
report into the ledger; rows per second and peak memory against a raw loop doing only the bytes.

(a) manifest: N planned versions (in plan actions of 1,000) -> the CSV manifest (keys URL-encoded)
    and its SHA-256. Raw loop: the same lines written and hashed, nothing else. vigil:
    `batch_jobs.Location.add`, what `BatchExecutor.submit` does per action.
(b) report: a completion report of N rows (AWS's format, 4 result files, 1% held) in moto's S3
    (in process) -> the ledger. Raw loop: get each file, check its MD5, parse the CSV, decode and
    keyed-hash each key, write one JSON line per 1,000 rows. vigil: `Collector._results` (classification,
    result lines through the hash-chained ledger). Verify (one HeadObject per version) is not in
    it: its cost is S3's, one request per version, 16 at a time.
Each measurement runs in a fresh child process: CPU is its user+system time, peak RSS its VmHWM.
Usage: python bench/batch_jobs_bench.py [versions ...]  (default 1000000)
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, unquote_plus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUCKET, REPORTS = "example-billing", "vigil-batch"
KEY = bytes(range(32))


def _keys(n: int):
    for i in range(n):
        yield f"invoices/s{i % 1000}/inv {i}.json", f"v{i:012d}"


def manifest_raw(n: int, folder: Path) -> None:
    digest = hashlib.sha256()
    with (folder / "raw.csv").open("wb") as out:
        for key, version in _keys(n):
            line = f"{BUCKET},{quote(key, safe='/')},{version}\n".encode()
            out.write(line)
            digest.update(line)


def manifest_vigil(n: int, folder: Path) -> None:
    from retention.batch_jobs import Location
    loc = Location("billing", BUCKET, "us-east-1", folder / "vigil.csv")
    objects: list[list[str]] = []
    for key, version in _keys(n):
        objects.append([key, version])
        if len(objects) == 1000:
            loc.add({"objects": objects, "count": 1000, "bytes": 0, "action_id": f"{len(objects):032d}"})
            objects = []
    if objects:
        loc.add({"objects": objects, "count": len(objects), "bytes": 0, "action_id": "0" * 32})
    loc.sha256.hexdigest()


def _report(s3, n: int) -> None:
    """AWS's completion report layout: job-<id>/manifest.json naming result CSVs with their MD5s."""
    files = []
    rows = list(_keys(n))
    for part in range(4):
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        for index in range(part, n, 4):
            key, version = rows[index]
            held = index % 100 == 0
            writer.writerow([BUCKET, quote(key, safe="/"), version, "failed" if held else "succeeded", "200",
                             "PermanentFailure" if held else "", "held: S3 Object Lock legal hold" if held else "deleted"])
        body = text.getvalue().encode()
        key = f"vigil/batch/reports/job-1/results/{part}.csv"
        s3.put_object(Bucket=REPORTS, Key=key, Body=body)
        files.append({"TaskExecutionStatus": "succeeded", "Bucket": REPORTS, "MD5Checksum": hashlib.md5(body).hexdigest(), "Key": key})  # noqa: S324
    manifest = {"Format": "Report_CSV_20180820", "ReportCreationDate": "2026-12-04T00:00:00.000Z", "Results": files,
                "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"}
    s3.put_object(Bucket=REPORTS, Key="vigil/batch/reports/job-1/manifest.json", Body=json.dumps(manifest).encode())


def report(n: int, folder: Path, which: str) -> float:
    """Returns the CPU seconds of the ingestion alone (the report is put into moto first)."""
    import boto3
    from moto import mock_aws
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=REPORTS)
        _report(s3, n)
        start = time.process_time()
        if which == "raw":
            doc = json.loads(s3.get_object(Bucket=REPORTS, Key="vigil/batch/reports/job-1/manifest.json")["Body"].read())
            with (folder / "raw.jsonl").open("w") as out:
                chunk: list[str] = []
                for result in doc["Results"]:
                    body = s3.get_object(Bucket=REPORTS, Key=result["Key"])["Body"].read()
                    assert hashlib.md5(body).hexdigest() == result["MD5Checksum"]  # noqa: S324
                    for row in csv.reader(io.StringIO(body.decode())):
                        chunk.append(hmac.new(KEY, unquote_plus(row[1]).encode(), hashlib.sha256).hexdigest() + ":" + row[2])
                        if len(chunk) == 1000:
                            out.write(json.dumps(chunk) + "\n")
                            chunk = []
                out.write(json.dumps(chunk) + "\n")
        else:
            from retention.batch_jobs import Job
            from retention.batch_reports import Collector
            from retention.keys import RetentionKeys
            from retention.ledger import Ledger
            from vigil.aws import Aws
            ledger = Ledger(folder / "ledger.jsonl", "bench")
            job = Job("t" * 32, "billing", f"arn:aws:s3:::{BUCKET}", "us-east-1", n, "1")  # its report: job-1/
            described = {"Report": {"Bucket": f"arn:aws:s3:::{REPORTS}", "Prefix": "vigil/batch/reports", "Enabled": True}}
            intent = {"action_id": job.token, "action": "delete_versions", "store": "billing"}
            Collector(Aws(), RetentionKeys(KEY))._results(ledger, intent, job, 0, described)
            ledger.close()
            assert job.results["deleted"] + job.results["held"] == n and job.results["held"] == n // 100, job.results
        return time.process_time() - start


def child(mode: str, n: int) -> None:
    if mode.endswith("vigil"):  # imported before the clock starts: the raw loop imports nothing either
        import retention.batch_reports  # noqa: F401
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start, wall = time.process_time(), time.perf_counter()
        if mode.startswith("manifest"):
            (manifest_raw if mode.endswith("raw") else manifest_vigil)(n, folder)
            cpu = time.process_time() - start
        else:
            cpu = report(n, folder, mode.split("-")[1])
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"cpu": cpu, "wall": time.perf_counter() - wall, "rss_mib": rss}))


def main(sizes: list[int]) -> None:
    print(f"{'what':<18}{'versions':>11}{'CPU s':>9}{'versions/CPU-s':>16}{'peak RSS MiB':>14}")
    for n in sizes:
        for mode in ("manifest-raw", "manifest-vigil", "report-raw", "report-vigil"):
            env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1",
                   "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}
            env.pop("AWS_ENDPOINT_URL", None)
            out = subprocess.run([sys.executable, __file__, "--child", mode, str(n)], env=env, capture_output=True, text=True, check=True)
            got = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{mode:<18}{n:>11,}{got['cpu']:>9.2f}{n / got['cpu']:>16,.0f}{got['rss_mib']:>14.0f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main([int(a) for a in sys.argv[1:]] or [1_000_000])
