"""`vigil retain --engine spark` against `--engine local`: the same plan on two identical moto
worlds gives the same objects, ledger outcomes and verify results (Spark in local mode, its
tasks doing their S3 I/O with boto3 against the loopback moto server)."""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from vigil.retention.ledger import chain_ok, dangling, read_lines

from tests.conftest import _reset
from tests.test_retention_s3 import live_logs, old_logs
from tests.test_retention_world import BACKUP, PRIMARY, World, days_ago, jsonl, store_plan

STORES = ("web-logs", "call-records", "contacts")
BUCKETS = (("example-usage-logs", PRIMARY), ("example-usage-logs-replica", BACKUP), ("example-call-records", PRIMARY),
           ("example-contacts", PRIMARY), ("example-contacts-replica", BACKUP))


def _hold(data: dict[str, Any]) -> None:
    data["holds"] = [{"reason": "litigation 2026-17", "subjects": ["carol"], "until": "2031-01-01"}]


def build(world: World) -> None:
    """Every S3 layout the retention scenario covers: JSON lines and gzip with an older raw version
    and a replica, CSV with a row that cannot be read (its raw version is kept), whole objects of
    closed accounts with a replica, a delete marker and a legal hold."""
    world.bucket("example-usage-logs", replica="example-usage-logs-replica")
    for region, bucket in ((PRIMARY, "example-usage-logs"), (BACKUP, "example-usage-logs-replica")):
        world.put(bucket, "web/a.jsonl", jsonl(old_logs(6)), region=region)
        world.put(bucket, "web/a.jsonl", jsonl(old_logs(6) + live_logs(2)), region=region, Tagging="team=web",
                  ContentType="application/x-ndjson")
        world.put(bucket, "web/b.jsonl.gz", gzip.compress(jsonl(old_logs(5, host=40)).encode()), region=region)
    world.bucket("example-call-records")
    rows = [["caller", "callee", "caller_ip", "started_at", "card_number", "duration", "notes"],
            ["+15550001", "+15550002", "192.0.2.55", days_ago(700), "4111111111111111", "61", "private"],
            ["+15550003", "+15550004", "192.0.2.66", days_ago(3), "4000000000000002", "12", "fresh"],
            ["+15550005", "+15550006", "192.0.2.77"]]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    world.put("example-call-records", "cdr/2025.csv", out.getvalue())
    world.table("accounts", "account_id")
    world.account("alice", closed_at="2020-01-01T00:00:00Z")
    world.account("bob")
    world.account("carol", closed_at="2020-01-01T00:00:00Z")
    world.bucket("example-contacts", replica="example-contacts-replica")
    for name in ("alice", "bob", "carol"):
        world.put("example-contacts", f"contacts/{name}.json", json.dumps({"name": name, "v": 1}))
    world.put("example-contacts", "contacts/alice.json", json.dumps({"name": "alice", "v": 2}))
    world.s3[PRIMARY].delete_object(Bucket="example-contacts", Key="contacts/alice.json")
    for name in ("alice", "bob"):
        world.put("example-contacts-replica", f"contacts/{name}.json", json.dumps({"name": name}), region=BACKUP)


def objects(world: World) -> dict[str, list]:
    """Every version's key, place, body, metadata and tags; version ids differ between worlds, so
    they and the metadata naming them are left out."""
    state = {}
    for bucket, region in BUCKETS:
        rows = []
        for v in world.versions(bucket, region):
            metadata = {k: val for k, val in v.get("metadata", {}).items() if k != "vigil-replaces"}
            rows.append((v["key"], v["latest"], v.get("marker", False), v.get("body", b""), sorted(metadata.items())))
        state[bucket] = sorted(rows)
    return state


def _strip(value: Any) -> Any:
    """A ledger field without what names a version or a time (those differ between worlds)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in ("new_version", "version")}
    if isinstance(value, list):
        return sorted(_strip(v) if not isinstance(v, str) else v.split(":", 1)[0] for v in value)
    return value


def outcomes(out: Path) -> list:
    ledger = out / "ledger.jsonl"
    assert chain_ok(ledger)
    lines = list(read_lines(ledger))
    return sorted(json.dumps([ln["phase"], ln["action"], ln["store"], ln.get("outcome"), _strip(ln["target"]),
                              _strip(ln["detail"])], sort_keys=True, default=str) for ln in lines)


def scenario(world: World, engine: str) -> dict[str, Any]:
    build(world)
    args = ["--apply", *[a for s in STORES for a in ("--store", s)], "--engine", engine]
    code, plan, out = world.retain(*args)
    first = {"code": code, "objects": objects(world), "ledger": outcomes(out),
             "verify": {s: store_plan(plan, s)["verify"] for s in STORES},
             "counts": {s: store_plan(plan, s)["counts"] for s in STORES}}
    assert plan["run"]["engine"] == engine
    assert {ln["engine"] for ln in read_lines(out / "ledger.jsonl")} == {engine}
    code, plan, out = world.retain(*args)  # idempotence: the second run has nothing left to do
    first["again"] = {"code": code, "objects": objects(world), "counts": {s: store_plan(plan, s)["counts"] for s in STORES}}
    return first


@pytest.mark.spark
def test_local_and_spark_engines_give_the_same_objects_ledger_and_verify(tmp_path: Path, monkeypatch, moto_server,
                                                                          spark_session) -> None:
    for name in ("local", "spark"):
        (tmp_path / name).mkdir()
    local = scenario(World(tmp_path / "local", monkeypatch, _hold, endpoint=moto_server), "local")
    _reset(moto_server)  # the second, identical world
    tracker = spark_session.sparkContext.statusTracker()
    jobs = len(tracker.getJobIdsForGroup(None))
    spark = scenario(World(tmp_path / "spark", monkeypatch, _hold, endpoint=moto_server), "spark")
    assert len(tracker.getJobIdsForGroup(None)) > jobs, "the spark run dispatched its actions as Spark jobs"
    assert local["counts"]["web-logs"]["anonymize"] == 2 * (6 + 5) and local["counts"]["contacts"]["delete"] == 3
    assert local["verify"]["web-logs"] == {"status": "pass", "remaining": 0}
    assert local["verify"]["call-records"]["status"] == "fail", "the raw version with the unreadable row is kept"
    assert any('"anonymize_object"' in line and '"outcome"' in line for line in local["ledger"])
    for part in ("code", "objects", "ledger", "verify", "counts", "again"):
        assert spark[part] == local[part], part
    assert spark["again"]["objects"] == spark["objects"], "a second run changes nothing"


def _tmp_world(tmp_path: Path, monkeypatch) -> World:
    world = World(tmp_path, monkeypatch)
    world.bucket("example-billing")
    return world


def test_a_dry_run_plan_names_its_engine(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = _tmp_world(tmp_path, monkeypatch)
        assert world.retain("--store", "billing")[1]["run"]["engine"] == "local"
        monkeypatch.setenv("VIGIL_RETAIN_ENGINE", "spark")
        code, plan, _ = world.retain("--store", "billing")
        assert code == 0 and plan["run"]["engine"] == "spark", "the environment variable chooses the engine"


def test_spark_without_pyspark_exits_2_naming_the_extra(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)  # as if it were not installed
    with mock_aws():
        world = _tmp_world(tmp_path, monkeypatch)
        code, plan, out = world.retain("--apply", "--store", "billing", "--engine", "spark")
    assert code == 2 and plan == {} and not out.exists()
    assert "pip install 'vigil[spark]'" in capsys.readouterr().err


def test_an_unknown_engine_exits_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("VIGIL_RETAIN_ENGINE", "dask")
    with mock_aws():
        code, plan, _ = _tmp_world(tmp_path, monkeypatch).retain("--store", "billing")
    assert code == 2 and plan == {}
    assert "expected one of local, spark" in capsys.readouterr().err


@pytest.mark.spark
@pytest.mark.parametrize(("point", "exit_code"), [("spark.after_intents", 137), ("rewrite.before_raw_delete", 3)])
def test_a_spark_run_killed_mid_batch_is_finished_by_the_next_run(tmp_path: Path, monkeypatch, moto_server, spark_session,
                                                                   point: str, exit_code: int) -> None:
    """The driver killed with a batch's intents on disk (137), or a task's Python worker killed after
    its rewrite and before the raw delete (the job fails: exit 3, no traceback). The next spark run
    resolves the dangling intents and ends where one uninterrupted local run ends."""
    for name in ("local", "spark"):
        (tmp_path / name).mkdir()
    local = World(tmp_path / "local", monkeypatch, _hold, endpoint=moto_server)
    build(local)
    stores = [a for s in STORES for a in ("--store", s)]
    code, plan, _ = local.retain("--apply", *stores)
    expected = {"code": code, "objects": objects(local), "verify": {s: store_plan(plan, s)["verify"] for s in STORES}}
    _reset(moto_server)

    world = World(tmp_path / "spark", monkeypatch, _hold, endpoint=moto_server)
    build(world)
    out = tmp_path / "spark" / "run"
    command = [sys.executable, "-m", "vigil", "retain", "--apply", "--policy", str(world.policy_path), "--output", str(out),
               "--endpoint-url", moto_server, *stores, "--engine", "spark", "--spark-master", "local[1]"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    crashed = subprocess.run(command, env={**env, "VIGIL_CRASH_AT": point}, capture_output=True, text=True, timeout=300)
    assert crashed.returncode == exit_code, crashed.stderr[-3000:]
    assert "Traceback" not in crashed.stderr
    open_intents = dangling(out / "ledger.jsonl")
    assert open_intents and {i["engine"] for i in open_intents.values()} == {"spark"}

    code, plan, _ = world.retain("--apply", *stores, "--engine", "spark", out=out)
    lines = list(read_lines(out / "ledger.jsonl"))
    assert chain_ok(out / "ledger.jsonl") and not dangling(out / "ledger.jsonl")
    assert sum(1 for ln in lines if (ln.get("detail") or {}).get("resumed")) == len(open_intents)
    assert {"code": code, "objects": objects(world),
            "verify": {s: store_plan(plan, s)["verify"] for s in STORES}} == expected
