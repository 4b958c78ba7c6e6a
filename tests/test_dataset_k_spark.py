"""Dataset-wide k-anonymity with `--engine spark` equals `--engine local`: the first pass counted by
Spark tasks and groupBy().count(), the suppression set broadcast to the rewrite tasks. Spark in
local mode, its tasks doing their S3 I/O with boto3 against the loopback moto server."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from vigil.retention import dataset_k_spark
from vigil.retention.ledger import read_lines

from tests.conftest import _reset
from tests.test_dataset_k import BUCKET, dataset_scope, lone
from tests.test_retention_s3 import live_logs, old_logs
from tests.test_retention_world import BACKUP, PRIMARY, World, jsonl, store_plan

REPLICA = f"{BUCKET}-replica"


def build(world: World, lone_records: int) -> None:
    """The same records in the bucket and its replica: 20 old ones of one class, one per object,
    and `lone_records` in classes of their own beside two live ones."""
    world.bucket(BUCKET, replica=REPLICA)
    for region, bucket in ((PRIMARY, BUCKET), (BACKUP, REPLICA)):
        for i, record in enumerate(old_logs(20)):
            world.put(bucket, f"web/{i:02}.jsonl", jsonl([record]), region=region)
        world.put(bucket, "web/extra.jsonl", jsonl(lone(lone_records) + live_logs(2)), region=region)


def state(world: World) -> dict[str, list]:
    return {bucket: sorted((v["key"], v["latest"], v.get("body", b"")) for v in world.versions(bucket, region))
            for bucket, region in ((BUCKET, PRIMARY), (REPLICA, BACKUP))}


def outcomes(out: Path) -> list[str]:
    return sorted(json.dumps([ln["phase"], ln["action"], ln.get("outcome"), ln["detail"] if ln["phase"] == "judgement" else None,
                              {k: v for k, v in ln["target"].items() if k != "version"}])
                  for ln in read_lines(out / "ledger.jsonl"))


def with_ladder(data: dict[str, Any]) -> None:
    dataset_scope(data)
    data["categories"]["usage_logs"]["verify"]["ladder"] = {"ip": ["generalize_ip:16"]}


def run(world: World, engine: str, lone_records: int) -> dict[str, Any]:
    build(world, lone_records)
    code, plan, out = world.retain("--apply", "--store", "web-logs", "--engine", engine)
    summary = store_plan(plan, "web-logs")
    return {"code": code, "objects": state(world), "ledger": outcomes(out), "counts": summary["counts"],
            "k": summary["k_anonymity"], "verify": summary["verify"]}


@pytest.mark.spark
@pytest.mark.parametrize("lone_records,change", [
    (1, dataset_scope),  # 1 of 21 in a class below k: suppressed (within 5%)
    (2, dataset_scope),  # 2 of 22: refused
    (3, with_ladder),  # 3 of 23 at /24, none at /16 (their class has 3): the ladder's rung for the dataset
])
def test_local_and_spark_judge_the_dataset_alike(tmp_path: Path, monkeypatch, moto_server, spark_session,
                                                 lone_records: int, change) -> None:
    for name in ("local", "spark"):
        (tmp_path / name).mkdir()
    local = run(World(tmp_path / "local", monkeypatch, change, endpoint=moto_server), "local", lone_records)
    _reset(moto_server)
    tracker = spark_session.sparkContext.statusTracker()
    jobs = len(tracker.getJobIdsForGroup(None))
    monkeypatch.setattr(dataset_k_spark, "CHUNK", 7)  # the 21 objects reach Spark in three chunks
    spark = run(World(tmp_path / "spark", monkeypatch, change, endpoint=moto_server), "spark", lone_records)
    assert len(tracker.getJobIdsForGroup(None)) > jobs, "the spark run counted the dataset with Spark jobs"
    assert spark == local
    assert [j["location"] for j in local["k"]] == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{REPLICA}"]
    if lone_records == 1:
        assert local["counts"]["anonymize"] == 2 * 20 and local["counts"]["suppress"] == 2 and local["code"] == 0
        assert all(j["suppressed"] == 1 and j["refused"] is None for j in local["k"])
    elif lone_records == 3:
        assert local["counts"]["anonymize"] == 2 * 23 and local["counts"]["suppress"] == 0 and local["code"] == 0
        assert all(j["generalization"] == "ip=generalize_ip:16" and j["suppressed"] == 0 for j in local["k"])
    else:
        assert local["counts"]["anonymize"] == 0 and local["code"] == 1
        assert all('"judgement"' in line for line in local["ledger"]), "nothing but the judgements (and why) is in the ledger"
        assert all(j["refused"] for j in local["k"])


@pytest.mark.spark
def test_an_empty_store_is_judged_by_spark_as_empty(tmp_path: Path, monkeypatch, moto_server, spark_session) -> None:
    world = World(tmp_path, monkeypatch, dataset_scope, endpoint=moto_server)
    world.bucket(BUCKET)
    code, plan, _ = world.retain("--store", "web-logs", "--engine", "spark")
    (judged,) = store_plan(plan, "web-logs")["k_anonymity"]
    assert (judged["records"], judged["suppressed"], judged["refused"], code) == (0, 0, None, 0)
