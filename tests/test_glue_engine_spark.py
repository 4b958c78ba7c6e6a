"""The job side of `--engine glue` in Spark local mode: deploy/spark_job.py's slice mode runs the
slice the driver uploaded as Spark tasks (boto3 against the loopback moto server), and the driver
takes its outcomes into the ledger. The end state equals one `--engine local` run's."""
from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from vigil.retention.ledger import chain_ok, dangling, read_lines

from tests.conftest import _reset
from tests.test_glue_engine import ARTIFACTS, GLUE, ONLY, STORES, glue_runs_stay_running, objects, world_with_jobs
from tests.test_infra_spark_job import _script as _job_script
from tests.test_retention_world import PRIMARY, store_plan


@pytest.mark.spark
def test_the_glue_job_script_runs_the_slice_on_spark_and_the_driver_collects(tmp_path: Path, monkeypatch, moto_server,
                                                                             spark_session) -> None:
    for name in ("local", "glue"):
        (tmp_path / name).mkdir()
    local, _ = world_with_jobs(tmp_path / "local", monkeypatch, endpoint=moto_server)
    code, plan, _ = local.retain("--apply", *ONLY)
    expected = {"code": code, "objects": objects(local), "verify": {s: store_plan(plan, s)["verify"] for s in STORES}}
    _reset(moto_server)

    world, _ = world_with_jobs(tmp_path / "glue", monkeypatch, endpoint=moto_server)
    out = tmp_path / "glue" / "run"
    glue = boto3.client("glue", region_name=PRIMARY, endpoint_url=moto_server)
    with glue_runs_stay_running():
        assert world.retain("--apply", *ONLY, *GLUE, "--job-timeout", "0.001", out=out)[0] == 3
        [started] = glue.get_job_runs(JobName="vigil-retain")["JobRuns"]
        argv = ["--JOB_NAME", "vigil-retain", "--JOB_RUN_ID", started["Id"]]
        argv += [a for flag, value in started["Arguments"].items() for a in (flag, value)]
        script = _job_script()
        tracker = spark_session.sparkContext.statusTracker()
        jobs = len(tracker.getJobIdsForGroup(None))
        written = script.run_slice(spark_session, *script.slice_args(argv), endpoint_url=moto_server)
        assert len(tracker.getJobIdsForGroup(None)) > jobs, "the slice's actions ran as Spark tasks"
        assert written == len(dangling(out / "ledger.jsonl"))
    code, plan, _ = world.retain("--apply", *ONLY, *GLUE, out=out)
    assert chain_ok(out / "ledger.jsonl") and not dangling(out / "ledger.jsonl")
    assert [ln["detail"]["state"] for ln in read_lines(out / "ledger.jsonl") if ln["phase"] == "job"] == \
        ["STARTING", "STARTED", "SUCCEEDED"]
    assert {"code": code, "objects": objects(world), "verify": {s: store_plan(plan, s)["verify"] for s in STORES}} == expected
    assert boto3.client("s3", region_name=PRIMARY, endpoint_url=moto_server).list_objects_v2(Bucket=ARTIFACTS)["KeyCount"] == 0
