"""A retention run killed mid-way (the Spark driver, a Spark task, or the local engine) and finished
by the next run, on the same engine or the other: it ends where one uninterrupted local run ends
(the whole scenario of test_retention_spark.py)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from vigil.retention.ledger import chain_ok, dangling, read_lines

from tests.conftest import _reset
from tests.test_retention_spark import STORES, _hold, build, objects
from tests.test_retention_world import World, store_plan


@pytest.mark.spark
@pytest.mark.parametrize(("crashed_engine", "point", "exit_code", "next_engine"), [
    ("spark", "spark.after_intents", 137, "spark"), ("spark", "rewrite.before_raw_delete", 3, "spark"),
    ("local", "rewrite.before_raw_delete", 137, "local"), ("spark", "spark.after_intents", 137, "local")])
def test_a_run_killed_mid_batch_is_finished_by_the_next_run(tmp_path: Path, monkeypatch, moto_server, spark_session,
                                                          crashed_engine: str, point: str, exit_code: int,
                                                          next_engine: str) -> None:
    """The Spark driver killed with a batch's intents on disk (137, as SIGKILL leaves it: no outcome, no
    cleanup), a Spark task's Python worker killed after its rewrite and before the raw delete (the job
    fails: exit 3, no traceback), or the local engine killed there. The next run, on the same engine or
    the other one, resolves the dangling intents and ends where one uninterrupted local run ends."""
    for name in ("local", "crashed"):
        (tmp_path / name).mkdir()
    local = World(tmp_path / "local", monkeypatch, _hold, endpoint=moto_server)
    build(local)
    stores = [a for s in STORES for a in ("--store", s)]
    code, plan, _ = local.retain("--apply", *stores)
    expected = {"code": code, "objects": objects(local), "verify": {s: store_plan(plan, s)["verify"] for s in STORES}}
    _reset(moto_server)

    world = World(tmp_path / "crashed", monkeypatch, _hold, endpoint=moto_server)
    build(world)
    out = tmp_path / "crashed" / "run"
    command = [sys.executable, "-m", "vigil", "retain", "--apply", "--policy", str(world.policy_path), "--output", str(out),
               "--endpoint-url", moto_server, *stores, "--engine", crashed_engine, "--spark-master", "local[1]"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    crashed = subprocess.run(command, env={**env, "VIGIL_CRASH_AT": point}, capture_output=True, text=True, timeout=300)
    assert crashed.returncode == exit_code, crashed.stderr[-3000:]
    assert "Traceback" not in crashed.stderr
    open_intents = dangling(out / "ledger.jsonl")
    assert open_intents and {i["engine"] for i in open_intents.values()} == {crashed_engine}

    code, plan, _ = world.retain("--apply", *stores, "--engine", next_engine, out=out)
    lines = list(read_lines(out / "ledger.jsonl"))
    assert chain_ok(out / "ledger.jsonl") and not dangling(out / "ledger.jsonl")
    assert sum(1 for ln in lines if (ln.get("detail") or {}).get("resumed")) == len(open_intents)
    assert not [ln for ln in lines if ln.get("outcome") == "failed"]
    assert {"code": code, "objects": objects(world),
            "verify": {s: store_plan(plan, s)["verify"] for s in STORES}} == expected
