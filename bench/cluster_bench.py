"""What `vigil retain --engine glue` costs on the driver per planned action, against a raw loop.

The job does the S3 work; the driver (retention/cluster_engine.py) writes each action's intent
to the ledger, the action to the gzip slice, one fsync, the SHA-256 and the upload, starts the
run, and at the end reads the job's results parts into ledger outcomes. Both halves run here
with vigil's own code (ClusterApplier.run, cluster_engine.finish) against moto in process (S3,
Glue; the run is held RUNNING, the driver times out polling, the results are written as the job
writes them, then the run ends). The peer is a raw loop doing the same bytes: json.dumps of each
action into gzip and of a ledger-like line into a file, one fsync; then json.loads of each result
line and a ledger-like line written. CPU seconds (user+system) of this process, since the
machine is shared. Usage: python bench/cluster_bench.py [actions ...]  (default 200000)
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REGION, BUCKET, JOB = "us-east-1", "example-artifacts", "vigil-retain"


def cpu() -> float:
    times = os.times()
    return times.user + times.system


def actions(n: int):
    for i in range(n):
        yield {"action_id": f"a{i:09d}", "action": "delete_versions", "store": "billing", "location": "example-billing",
               "region": REGION, "objects": [[f"invoices/2019/inv-{i}.json", f"v{i:012d}"]], "count": 1, "bytes": 1234}


def raw(n: int, folder: Path) -> float:
    start = cpu()
    with gzip.open(folder / "slice.gz", "wb") as out, open(folder / "ledger", "wb") as ledger:
        for action in actions(n):
            out.write(json.dumps(action).encode() + b"\n")
            key = hashlib.sha256(action["objects"][0][0].encode()).hexdigest()
            ledger.write(json.dumps({"phase": "intent", "action_id": action["action_id"], "target": [key]}).encode() + b"\n")
        ledger.flush()
        os.fsync(ledger.fileno())
    results = [json.dumps({"action_id": f"a{i:09d}", "outcome": "ok", "detail": {"deleted": 1}, "done": 1}) for i in range(n)]
    with open(folder / "ledger", "ab") as ledger:
        for line in results:
            result = json.loads(line)
            ledger.write(json.dumps({"phase": "outcome", "action_id": result["action_id"], "outcome": result["outcome"],
                                     "detail": result["detail"]}).encode() + b"\n")
    return cpu() - start


def vigil(n: int, folder: Path) -> tuple[float, float]:
    import boto3
    from moto import mock_aws
    from moto.moto_api import state_manager
    from vigil.retention import cluster_engine
    from vigil.retention.apply import Applier
    from vigil.retention.cluster_job import results_prefix, split_uri
    from vigil.retention.keys import RetentionKeys
    from vigil.retention.ledger import Ledger

    from vigil.aws import Aws
    from vigil.errors import EnvironmentFailure
    from vigil.policy import load_policy

    with mock_aws():
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        boto3.client("glue", region_name=REGION).create_job(Name=JOB, Role="arn:aws:iam::123456789012:role/r",
                                                            Command={"Name": "glueetl"})
        policy = load_policy(ROOT / "policy.yaml")
        keys = RetentionKeys(evidence=b"e" * 32, pseudonym=b"p" * 32)
        aws = Aws()
        ledger = Ledger(folder / "ledger.jsonl", "bench", policy.sha256, keys.fingerprint, "glue")
        applier = Applier(aws, keys, ledger, lambda name: (), workers=1)
        settings = cluster_engine.ClusterSettings("glue", JOB, BUCKET, timeout=0.0, poll=0.0)
        driver = cluster_engine.ClusterApplier(applier, aws, policy, settings, "bench", datetime.now(UTC), {}, ["billing"], REGION)
        state_manager.set_transition(model_name="glue::job_run", transition={"progression": "manual", "times": 10**9})
        start = cpu()
        try:
            driver.run(actions(n))
        except EnvironmentFailure:  # still STARTING: the driver stops polling, as --job-timeout makes it
            pass
        before = cpu() - start
        state_manager.unset_transition("glue::job_run")
        lines = [json.loads(line) for line in (folder / "ledger.jsonl").read_text().splitlines() if '"phase":"job"' in line]
        target, token, run = lines[-1]["target"], lines[-1]["action_id"], lines[-1]["detail"]["job_run_id"]
        bucket, key = split_uri(target["slice"])
        body = "\n".join(json.dumps({"action_id": f"a{i:09d}", "outcome": "ok", "detail": {"deleted": 1}, "done": 1})
                         for i in range(n)) + "\n"
        boto3.client("s3", region_name=REGION).put_object(Bucket=bucket, Key=f"{results_prefix(key)}part-000000.jsonl", Body=body)
        start = cpu()
        cluster_engine.finish(aws, applier, token, target, run, 60.0, 0.0)
        after = cpu() - start
        ledger.close()
    return before, after


def main(sizes: list[int]) -> None:
    print(f"{'actions':>10} {'raw s':>8} {'vigil before-start s':>21} {'vigil collect s':>16} {'vigil/raw':>10} {'vigil actions/s':>16}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            peer = raw(n, Path(a))
            before, after = vigil(n, Path(b))
        total = before + after
        print(f"{n:>10} {peer:>8.2f} {before:>21.2f} {after:>16.2f} {total / peer:>10.2f} {n / total:>16,.0f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [200_000])
