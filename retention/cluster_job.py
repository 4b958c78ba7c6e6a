"""The job side of `vigil retain --engine glue|emr-serverless`: run a plan slice, report outcomes.

The driver (cluster_engine.py) plans locally and uploads the cluster-bound actions as a slice:
one gzip JSON-lines object, a header line then one action per line, with the real object keys
(so it is written SSE-KMS and never logged). The job (deploy/spark_job.py --vigil-slice) checks
the slice against the SHA-256 the driver passed in the job's arguments, rebuilds what a task
needs from the header (the policy file's bytes, checked against its hash; the as-of instant; the
closed accounts the plan judged by; the keys, read by the job itself and checked against the
ledger's key fingerprint), and runs the actions with the Spark engine's own task function
(spark_engine._run_partition -> Applier.execute: the same code as every engine). After each
batch it writes that batch's outcomes as one results part next to the slice, so a job that dies
midway has reported everything it finished; the driver takes the parts into its ledger.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import botocore.exceptions

from vigil.aws import Aws, describe_error
from vigil.errors import EnvironmentFailure, UsageError
from vigil.policy.loader import load_policy

from . import faults
from .dataset_k import DatasetJudgement
from .keys import load_keys
from .scan import anonymizer_for, store_rules
from .spark_engine import TaskSetup, _batches, _run_partition

SCHEMA = "vigil.cluster-slice/v1"
PART_ACTIONS = 4096  # actions per results part: what a job killed midway can lose at most is its last part's work
Dispatch = Callable[[TaskSetup, list[dict[str, Any]]], Iterator[tuple[int, tuple]]]


def sse_args(kms_key: str | None) -> dict[str, str]:
    """SSE-KMS for every artifact that holds plan data: the given key, else the bucket's default KMS key."""
    return {"ServerSideEncryption": "aws:kms", **({"SSEKMSKeyId": kms_key} if kms_key else {})}


def bucket_key(s3, bucket: str) -> str | None:
    """The bucket's default KMS key, if its default encryption names one: SSE-KMS without a key id
    would use AWS's aws/s3 key instead (None: that is what the slice gets)."""
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ServerSideEncryptionConfigurationNotFoundError":
            raise EnvironmentFailure(describe_error("s3:GetBucketEncryption", exc)) from None
        return None
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    return default.get("KMSMasterKeyID") if default.get("SSEAlgorithm", "").startswith("aws:kms") else None


def split_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise UsageError(f"--vigil-slice {uri!r}: expected s3://BUCKET/KEY")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def results_prefix(slice_key: str) -> str:
    return slice_key.rpartition("/")[0] + "/results/"


def write_slice(handle: IO[bytes], header: dict[str, Any], actions: Iterator[dict[str, Any]]) -> int:
    """The slice into `handle` (an unnamed temporary file: nothing is left behind by a kill)."""
    count = 0
    with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as out:
        out.write(json.dumps({"schema": SCHEMA, **header}).encode() + b"\n")
        for action in actions:
            out.write(json.dumps(action).encode() + b"\n")
            count += 1
    return count


def _read_slice(s3, uri: str, sha256: str, spool: IO[bytes]) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    bucket, key = split_uri(uri)
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
        spool.write(chunk)
    if digest.hexdigest() != sha256:
        raise UsageError(f"{uri}: its SHA-256 is not the one the driver started this job with; nothing was changed")
    spool.seek(0)
    lines = gzip.GzipFile(fileobj=spool, mode="rb")
    header = json.loads(lines.readline())
    if header.get("schema") != SCHEMA:
        raise UsageError(f"{uri}: not a {SCHEMA} slice; nothing was changed")
    return header, (json.loads(line) for line in lines)


@dataclass(frozen=True)
class Shared:
    """A value every task reads, as a Spark Broadcast is read (`.value`), for the in-process dispatch."""
    value: Any


def datasets_json(datasets: dict[tuple[str, str], DatasetJudgement]) -> list[dict[str, Any]]:
    """The dataset-wide k judgements (dataset_k.py) the rewrites apply, for the header."""
    return [{"store": store, **asdict(judgement), "small": sorted(judgement.small), "counted": None}
            for (store, _), judgement in datasets.items()]


def _datasets(rows: list[dict[str, Any]]) -> dict[tuple[str, str], DatasetJudgement]:
    out = {}
    for row in rows:
        fields = {k: v for k, v in row.items() if k != "store"}
        out[(row["store"], row["location"])] = DatasetJudgement(**{**fields, "small": frozenset(map(tuple, row["small"]))})
    return out


def task_setup(aws: Aws, header: dict[str, Any], share: Callable[[Any], Any] = Shared) -> TaskSetup:
    """What every task needs, rebuilt from the header exactly as the driver had it when it planned."""
    policy_bytes = header["policy"].encode("utf-8")
    if hashlib.sha256(policy_bytes).hexdigest() != header["policy_sha256"]:
        raise UsageError("the slice's policy does not match its SHA-256; nothing was changed")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "policy.yaml"
        path.write_bytes(policy_bytes)
        policy = load_policy(path)
    keys = load_keys(policy, aws)
    if keys.fingerprint != header["key_fingerprint"]:
        raise UsageError("the job's evidence key is not the one the driver's ledger uses; nothing was changed")
    as_of = datetime.fromisoformat(header["as_of"])
    closed = {subject: datetime.fromisoformat(at) for subject, at in header["closed"].items()}
    stores = {s.name: s for s in policy.stores if s.name in header["stores"]}
    contexts = {name: (store, store_rules(policy, store, as_of, closed), anonymizer_for(policy, store, keys))
                for name, store in stores.items()}
    datasets = _datasets(header.get("datasets", []))
    return TaskSetup(None, aws.endpoint_url, keys, contexts, share(datasets) if datasets else None)


def in_process(setup: TaskSetup, batch: list[dict[str, Any]]) -> Iterator[tuple[int, tuple]]:
    """The task function without a cluster (a job of one core; and the fast tests)."""
    return _run_partition(setup, enumerate(batch))


def run_slice(aws: Aws, uri: str, sha256: str, region: str, dispatch: Dispatch = in_process,
              part_actions: int = PART_ACTIONS, share: Callable[[Any], Any] = Shared) -> int:
    """Run every action of the slice; write each batch's outcomes as a results part. Returns the outcomes
    written. `share`: how tasks get the dataset-wide k judgements (SparkContext.broadcast on a cluster)."""
    s3 = aws.client("s3", region)
    bucket, key = split_uri(uri)
    written = 0
    with tempfile.TemporaryFile() as spool:
        header, actions = _read_slice(s3, uri, sha256, spool)
        setup = task_setup(aws, header, share)
        for number, batch in enumerate(_batches(actions, part_actions)):
            lines = [json.dumps({"action_id": batch[index]["action_id"], "outcome": result[0], "detail": result[1],
                                 "done": result[2]}, default=str) for index, result in dispatch(setup, batch)]
            s3.put_object(Bucket=bucket, Key=f"{results_prefix(key)}part-{number:06d}.jsonl",
                          Body=("\n".join(lines) + "\n").encode(), **sse_args(header.get("kms_key")))
            written += len(lines)
            faults.at("cluster_job.after_part")
    return written
