"""`vigil retain --engine glue|emr-serverless` against moto's Glue and EMR Serverless.

moto's start_job_run starts nothing, so a test that goes end to end holds the run RUNNING (moto's
state manager), lets the driver time out polling (exit 3, resumable), runs the job side in this
process against the slice the driver uploaded (with the arguments the job run was started with),
then lets the run end and the next driver collect. The job side in Spark local mode:
test_glue_engine_spark.py.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_api import state_manager
from vigil.retention import faults
from vigil.retention.cluster_job import run_slice
from vigil.retention.ledger import chain_ok, dangling, read_lines

from tests.test_retention_spark import _hold, build
from tests.test_retention_spark import objects as every_object
from tests.test_retention_world import PRIMARY, World, store_plan
from vigil.aws import Aws
from vigil.iam_actions import actions_for

STORES = ("web-logs", "call-records", "contacts")  # the S3 layouts of the retention scenario, and a DynamoDB-free run
BUCKETS = ("example-usage-logs", "example-usage-logs-replica", "example-call-records", "example-contacts",
           "example-contacts-replica")
ARTIFACTS, JOB, ROLE = "example-artifacts", "vigil-retain", "arn:aws:iam::123456789012:role/vigil-retention"
ONLY = [a for s in STORES for a in ("--store", s)]
GLUE = ["--engine", "glue", "--glue-job", JOB, "--artifacts-bucket", ARTIFACTS, "--job-poll-seconds", "0"]
PERSONAL = ("web/a.jsonl", "web/b.jsonl.gz", "cdr/2025.csv", "contacts/alice.json", "contacts/carol.json")


def objects(world: World) -> dict[str, list]:
    """The stores' buckets as test_retention_spark compares them (the other stores' objects are left as built)."""
    return {bucket: rows for bucket, rows in every_object(world).items() if bucket in BUCKETS}


def world_with_jobs(tmp_path: Path, monkeypatch, endpoint: str | None = None) -> tuple[World, str]:
    """The retention scenario's stores, an artifacts bucket, the Glue job and an EMR Serverless application."""
    world = World(tmp_path, monkeypatch, _hold, endpoint=endpoint)
    build(world)
    world.s3[PRIMARY].create_bucket(Bucket=ARTIFACTS)
    boto3.client("glue", region_name=PRIMARY, endpoint_url=endpoint).create_job(
        Name=JOB, Role=ROLE, Command={"Name": "glueetl", "ScriptLocation": f"s3://{ARTIFACTS}/vigil/spark_job.py"},
        ExecutionProperty={"MaxConcurrentRuns": 1})
    app = boto3.client("emr-serverless", region_name=PRIMARY, endpoint_url=endpoint).create_application(
        name=JOB, releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    return world, app


@contextmanager
def glue_runs_stay_running(polls: int = 10**9) -> Iterator[None]:
    """A Glue run moves STARTING -> RUNNING -> SUCCEEDED only after `polls` GetJobRun calls each."""
    state_manager.set_transition(model_name="glue::job_run", transition={"progression": "manual", "times": polls})
    try:
        yield
    finally:
        state_manager.unset_transition("glue::job_run")


def glue_runs() -> list[dict[str, Any]]:
    return boto3.client("glue", region_name=PRIMARY).get_job_runs(JobName=JOB)["JobRuns"]


def artifacts() -> list[str]:
    return [o["Key"] for o in boto3.client("s3", region_name=PRIMARY).list_objects_v2(Bucket=ARTIFACTS).get("Contents", [])]


def job_lines(out: Path) -> list[dict[str, Any]]:
    return [ln for ln in read_lines(out / "ledger.jsonl") if ln["phase"] == "job"]


def run_job(arguments: dict[str, str] | list[str], part_actions: int = 4096) -> int:
    """The job side, in this process, with the arguments its run was started with."""
    args = arguments if isinstance(arguments, dict) else dict(zip(arguments[::2], arguments[1::2], strict=True))
    return run_slice(Aws(), args["--vigil-slice"], args["--vigil-slice-sha256"], args["--vigil-region"],
                     part_actions=part_actions)


def kill_driver_at(point: str, monkeypatch, run: Callable[[], Any]) -> None:
    """Run the driver until `point` (retention/faults.py), where it stops as a kill leaves it: no
    outcome, no job line after it (the ledger is what a SIGKILL would leave)."""
    def killed(**_: Any) -> None:
        raise SystemExit(137)
    monkeypatch.setitem(faults.hooks, point, killed)
    with pytest.raises(SystemExit):
        run()
    monkeypatch.delitem(faults.hooks, point)


def expected_end(tmp_path: Path, monkeypatch) -> dict[str, Any]:
    """What one uninterrupted --engine local run leaves, on an identical world."""
    (tmp_path / "local").mkdir()
    with mock_aws():
        world, _ = world_with_jobs(tmp_path / "local", monkeypatch)
        code, plan, _ = world.retain("--apply", *ONLY)
        return {"code": code, "objects": objects(world), "verify": {s: store_plan(plan, s)["verify"] for s in STORES}}


def test_glue_run_is_uploaded_sealed_polled_resumed_without_a_second_start_and_collected(tmp_path: Path, monkeypatch,
                                                                                        capsys) -> None:
    expected = expected_end(tmp_path, monkeypatch)
    with mock_aws():
        world, _ = world_with_jobs(tmp_path, monkeypatch)
        out = tmp_path / "run"
        with glue_runs_stay_running():
            code, plan, _ = world.retain("--apply", *ONLY, *GLUE, "--job-timeout", "0.001", out=out)
            first = capsys.readouterr()
            [started] = glue_runs()
            assert code == 3 and f"job run {started['Id']} is still STARTING" in first.err
            assert plan["run"]["engine"] == "glue"
            lines = job_lines(out)
            assert [ln["detail"]["state"] for ln in lines] == ["STARTING", "STARTED"]
            target = lines[0]["target"]
            intents = dangling(out / "ledger.jsonl")
            assert len(intents) == target["actions"] > 0, "every cluster action's intent is on disk before the start"
            assert started["Arguments"]["--vigil-token"] == lines[0]["action_id"]
            head = world.s3[PRIMARY].head_object(Bucket=ARTIFACTS, Key=target["slice"].split("/", 3)[3])
            assert head["ServerSideEncryption"] == "aws:kms"
            text = (out / "ledger.jsonl").read_text() + first.out + first.err
            assert not [key for key in PERSONAL if key in text], "real object keys never reach the ledger or the output"

            code, _, _ = world.retain("--apply", *ONLY, *GLUE, "--job-timeout", "0.001", out=out)
            assert code == 3 and len(glue_runs()) == 1, "a resumed driver polls the same run and never starts another"
            assert objects(world) != expected["objects"], "nothing ran yet: moto's job runs nothing"
            assert run_job(started["Arguments"]) == target["actions"]
        with glue_runs_stay_running(polls=3):  # the driver polls through RUNNING to SUCCEEDED
            code, plan, _ = world.retain("--apply", *ONLY, *GLUE, out=out)
        assert len(glue_runs()) == 1
        ledger = list(read_lines(out / "ledger.jsonl"))
        assert chain_ok(out / "ledger.jsonl") and not dangling(out / "ledger.jsonl")
        assert job_lines(out)[-1]["detail"] | {"message": ""} == {
            "state": "SUCCEEDED", "job_run_id": started["Id"], "outcomes": target["actions"], "missing": 0, "message": ""}
        collected = [ln for ln in ledger if ln["phase"] == "outcome" and ln["action_id"] in intents]
        assert len(collected) == target["actions"] and {ln["engine"] for ln in collected} == {"glue"}
        assert {"code": code, "objects": objects(world),
                "verify": {s: store_plan(plan, s)["verify"] for s in STORES}} == expected
        assert artifacts() == [], "the slice (real keys) and the results are removed once in the ledger"


def test_a_failed_glue_run_keeps_the_outcomes_it_wrote_and_the_next_run_finishes(tmp_path: Path, monkeypatch, capsys) -> None:
    expected = expected_end(tmp_path, monkeypatch)
    with mock_aws():
        world, _ = world_with_jobs(tmp_path, monkeypatch)
        out = tmp_path / "run"
        with glue_runs_stay_running():
            assert world.retain("--apply", *ONLY, *GLUE, "--job-timeout", "0.001", out=out)[0] == 3
            [started] = glue_runs()

            def executor_lost(**_: Any) -> None:
                raise RuntimeError("executor lost")
            monkeypatch.setitem(faults.hooks, "cluster_job.after_part", executor_lost)
            with pytest.raises(RuntimeError, match="executor lost"):
                run_job(started["Arguments"], part_actions=1)  # one part written, then the job dies
            monkeypatch.delitem(faults.hooks, "cluster_job.after_part")
            from moto.glue.models import glue_backends
            glue_backends[DEFAULT_ACCOUNT_ID][PRIMARY].jobs[JOB].job_runs[0].status = "FAILED"
            capsys.readouterr()
            code, _, _ = world.retain("--apply", *ONLY, *GLUE, out=out)
        err = capsys.readouterr().err
        actions = job_lines(out)[0]["target"]["actions"]
        assert code == 3 and f"job run {started['Id']} of {JOB} ended FAILED" in err
        assert f"1 of its {actions} actions reported outcomes" in err
        assert job_lines(out)[-1]["detail"]["state"] == "FAILED"
        assert len(dangling(out / "ledger.jsonl")) == actions - 1, "the rest stay intents"

        code, plan, _ = world.retain("--apply", *ONLY, out=out)  # the next run (any engine) resolves and finishes
        assert not dangling(out / "ledger.jsonl") and chain_ok(out / "ledger.jsonl")
        assert {"code": code, "objects": objects(world),
                "verify": {s: store_plan(plan, s)["verify"] for s in STORES}} == expected
        assert len(glue_runs()) == 1


def test_emr_serverless_driver_killed_after_the_start_finds_its_run_by_token(tmp_path: Path, monkeypatch) -> None:
    expected = expected_end(tmp_path, monkeypatch)
    with mock_aws():
        world, app = world_with_jobs(tmp_path, monkeypatch)
        emr = boto3.client("emr-serverless", region_name=PRIMARY)
        out = tmp_path / "run"
        flags = ["--engine", "emr-serverless", "--emr-application", app, "--emr-role", ROLE, "--artifacts-bucket", ARTIFACTS,
                 "--job-poll-seconds", "0"]

        kill_driver_at("cluster.after_start", monkeypatch, lambda: world.retain("--apply", *ONLY, *flags, out=out))
        assert [ln["detail"]["state"] for ln in job_lines(out)] == ["STARTING"]
        [summary] = emr.list_job_runs(applicationId=app)["jobRuns"]
        run = emr.get_job_run(applicationId=app, jobRunId=summary["id"])["jobRun"]
        assert summary["name"] == job_lines(out)[0]["action_id"] and run["executionRole"] == ROLE
        assert run_job(run["jobDriver"]["sparkSubmit"]["entryPointArguments"]) > 0

        code, plan, _ = world.retain("--apply", *ONLY, *flags, out=out)
        assert len(emr.list_job_runs(applicationId=app)["jobRuns"]) == 1, "found by its token, not started again"
        assert [ln["detail"]["state"] for ln in job_lines(out)] == ["STARTING", "STARTED", "SUCCESS"]
        assert not dangling(out / "ledger.jsonl")
        assert {"code": code, "objects": objects(world),
                "verify": {s: store_plan(plan, s)["verify"] for s in STORES}} == expected


def test_a_dry_run_with_glue_plans_locally_and_uploads_and_starts_nothing(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world, _ = world_with_jobs(tmp_path, monkeypatch)
        before = objects(world)
        local_code, local_plan, _ = world.retain(*ONLY)
        code, plan, out = world.retain(*ONLY, *GLUE)
        assert code == local_code and plan["run"]["engine"] == "glue" and plan["run"]["mode"] == "dry-run"
        assert plan["stores"] == local_plan["stores"] and store_plan(plan, "web-logs")["counts"]["anonymize"] > 0
        assert artifacts() == [] and glue_runs() == [] and not (out / "ledger.jsonl").exists()
        assert objects(world) == before


@pytest.mark.parametrize(("flags", "names"), [
    (["--engine", "glue", "--artifacts-bucket", ARTIFACTS], "--glue-job NAME"),
    (["--engine", "glue", "--glue-job", JOB], "--artifacts-bucket BUCKET"),
    (["--engine", "emr-serverless", "--emr-application", "00x", "--artifacts-bucket", ARTIFACTS], "--emr-role ARN"),
    ([*GLUE, "--as-of", "2099-01-01"], "--as-of 2099-01-01T00:00:00Z is in the future"),
    ([*GLUE, "--accounts-file", "accounts.yaml"], "--engine glue runs one account's plan"),
])
def test_bad_cluster_flags_exit_2_before_anything_changes(tmp_path: Path, monkeypatch, capsys, flags: list[str],
                                                          names: str) -> None:
    with mock_aws():
        world, _ = world_with_jobs(tmp_path, monkeypatch)
        (tmp_path / "accounts.yaml").write_text("- {account_id: '123456789012', name: one}\n- {account_id: '210987654321', name: two}\n")
        monkeypatch.chdir(tmp_path)
        before = objects(world)
        code, plan, out = world.retain("--apply", *ONLY, *flags)
        assert code == 2 and plan == {} and names in capsys.readouterr().err
        assert artifacts() == [] and glue_runs() == [] and objects(world) == before


def test_the_iam_policy_adds_the_drivers_calls_only_with_a_cluster_engine(capsys) -> None:
    from vigil.cli.main import main

    def statements(*flags: str) -> dict[str, Any]:
        assert main(["iam-policy", "retain", "--account", "123456789012", "--bucket", "replica", *flags]) == 0
        return {s["Sid"]: s for s in json.loads(capsys.readouterr().out)["Statement"]}

    local = statements()
    assert not [sid for sid in local if sid.startswith(("Artifact", "Glue", "Emr"))]
    glue = statements("--engine", "glue", "--glue-job", JOB, "--artifacts-bucket", ARTIFACTS)
    assert glue["GlueJob"]["Action"] == ["glue:GetJobRun", "glue:GetJobRuns", "glue:StartJobRun"]
    assert glue["GlueJob"]["Resource"][0] == f"arn:aws:glue:us-east-1:123456789012:job/{JOB}"
    assert glue["ArtifactRuns"]["Resource"] == [f"arn:aws:s3:::{ARTIFACTS}/vigil/runs/*"]
    assert "EmrExecutionRole" not in glue and "EmrServerlessJobRuns" not in glue
    emr = statements("--engine", "emr-serverless", "--emr-application", "00x", "--emr-role", ROLE, "--artifacts-bucket", ARTIFACTS)
    assert emr["EmrExecutionRole"]["Resource"] == [ROLE] and "iam:PassRole" in emr["EmrExecutionRole"]["Action"]
    assert "emr-serverless:StartJobRun" in emr["EmrServerlessJobRuns"]["Action"] and "GlueJob" not in emr


def test_a_driver_killed_before_the_start_never_starts_that_stale_slice(tmp_path: Path, monkeypatch) -> None:
    """Killed with the slice uploaded and its intents on disk but no job run: the next run (any engine)
    records that it never started, removes the slice, and plans the actions again from the stores."""
    expected = expected_end(tmp_path, monkeypatch)
    with mock_aws():
        world, _ = world_with_jobs(tmp_path, monkeypatch)
        out = tmp_path / "run"

        kill_driver_at("cluster.before_start", monkeypatch, lambda: world.retain("--apply", *ONLY, *GLUE, out=out))
        assert len(artifacts()) == 1 and dangling(out / "ledger.jsonl")

        code, plan, _ = world.retain("--apply", *ONLY, out=out)
        assert [ln["detail"]["state"] for ln in job_lines(out)] == ["STARTING", "NEVER_STARTED"]
        assert glue_runs() == [] and artifacts() == [] and not dangling(out / "ledger.jsonl")
        assert {"code": code, "objects": objects(world),
                "verify": {s: store_plan(plan, s)["verify"] for s in STORES}} == expected


def test_the_slice_is_sealed_under_the_key_the_bucket_names_by_default(tmp_path: Path, monkeypatch) -> None:
    """SSE-KMS without a key id would use AWS's aws/s3 key: the driver names the bucket's own key."""
    with mock_aws():
        world, _ = world_with_jobs(tmp_path, monkeypatch)
        key = boto3.client("kms", region_name=PRIMARY).create_key()["KeyMetadata"]["Arn"]
        world.s3[PRIMARY].put_bucket_encryption(Bucket=ARTIFACTS, ServerSideEncryptionConfiguration={"Rules": [
            {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]})
        with glue_runs_stay_running():
            code, _, out = world.retain("--apply", *ONLY, *GLUE, "--job-timeout", "0.001")
        assert code == 3
        head = world.s3[PRIMARY].head_object(Bucket=ARTIFACTS, Key=job_lines(out)[0]["target"]["slice"].split("/", 3)[3])
        assert head["ServerSideEncryption"] == "aws:kms" and head["SSEKMSKeyId"] == key


def test_every_call_the_glue_driver_makes_is_allowed_by_its_iam_policy(tmp_path: Path, monkeypatch, capsys) -> None:
    """The driver's job and artifacts calls (start, look up by token, poll, upload, collect, remove),
    recorded as botocore sends them, against `vigil iam-policy retain --engine glue`."""
    import botocore.handlers

    from tests.test_iam_policy import _allowed, _record
    from tests.test_iam_policy import _resources as arns
    from vigil.cli.main import main

    calls: list[tuple[str, str, dict]] = []
    builtin = list(botocore.handlers.BUILTIN_HANDLERS)
    with mock_aws():
        world, _ = world_with_jobs(tmp_path, monkeypatch)
        out = tmp_path / "run"
        monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*builtin, *_record(calls)])  # sessions made from now on

        kill_driver_at("cluster.after_start", monkeypatch, lambda: world.retain("--apply", *ONLY, *GLUE, out=out))
        with glue_runs_stay_running():
            assert world.retain("--apply", *ONLY, *GLUE, "--job-timeout", "0.001", out=out)[0] == 3  # found by token
            monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", builtin)  # the job's calls are the job role's
            run_job(glue_runs()[0]["Arguments"])
            monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*builtin, *_record(calls)])
        world.retain("--apply", *ONLY, *GLUE, out=out)
    capsys.readouterr()
    assert main(["iam-policy", "retain", "--policy", str(world.policy_path), "--account", DEFAULT_ACCOUNT_ID,
                 "--engine", "glue", "--glue-job", JOB, "--artifacts-bucket", ARTIFACTS]) == 0
    policy = json.loads(capsys.readouterr().out)
    driver = [(op, region, params) for op, region, params in calls
              if op.startswith("glue:") or params.get("Bucket") == ARTIFACTS]
    assert {op for op, _, _ in driver} >= {"glue:StartJobRun", "glue:GetJobRuns", "glue:GetJobRun", "s3:PutObject",
                                           "s3:GetBucketEncryption", "s3:ListObjectsV2", "s3:GetObject", "s3:DeleteObject"}
    denied = set()
    for op, region, params in driver:
        resources = [f"arn:aws:glue:{region}:{DEFAULT_ACCOUNT_ID}:job/{params['JobName']}"] if op.startswith("glue:") \
            else arns(op, region, params)
        denied |= {(op, action, r) for action in actions_for(op) for r in resources if not _allowed(policy, action, r)}
    assert not denied


def test_a_dataset_wide_k_judgement_travels_in_the_slice_to_the_job(tmp_path: Path, monkeypatch) -> None:
    """verify.scope: dataset: every object below k alone, the dataset k-anonymous. The job rewrites
    each by the driver's judgement (published whole; the lone record suppressed), as the local engine does."""
    from tests.test_dataset_k import BUCKET, dataset_scope, lone, records, spread

    with mock_aws():
        world = World(tmp_path, monkeypatch, dataset_scope)
        spread(world, lone(1))
        world.s3[PRIMARY].create_bucket(Bucket=ARTIFACTS)
        boto3.client("glue", region_name=PRIMARY).create_job(Name=JOB, Role=ROLE, Command={"Name": "glueetl"})
        out = tmp_path / "run"
        with glue_runs_stay_running():
            assert world.retain("--apply", "--store", "web-logs", *GLUE, "--job-timeout", "0.001", out=out)[0] == 3
            run_job(glue_runs()[0]["Arguments"])
        code, plan, _ = world.retain("--apply", "--store", "web-logs", *GLUE, out=out)
        for i in range(20):
            (published,) = records(world, f"web/{i:02}.jsonl")
            assert published["ip"] == "203.0.113.0/24", "published by the dataset's judgement, not refused alone"
        assert [r["ip"] for r in records(world, "web/extra.jsonl")] == ["198.51.100.0", "198.51.100.1"]
        rewrites = [ln for ln in read_lines(out / "ledger.jsonl") if ln["action"] == "anonymize_object" and ln["phase"] == "outcome"]
        assert len(rewrites) == 21 and {ln["outcome"] for ln in rewrites} == {"ok"} and {ln["engine"] for ln in rewrites} == {"glue"}
        assert code == 0 and store_plan(plan, "web-logs")["verify"] == {"status": "pass", "remaining": 0}
        assert world.s3[PRIMARY].list_object_versions(Bucket=BUCKET)["Versions"]


def test_a_run_that_succeeds_without_reporting_is_not_counted_as_done(tmp_path: Path, monkeypatch, capsys) -> None:
    """moto's run succeeds at once and runs nothing: no outcome is invented, the intents stay, exit 3."""
    with mock_aws():
        world, _ = world_with_jobs(tmp_path, monkeypatch)
        before = objects(world)
        code, plan, out = world.retain("--apply", *ONLY, *GLUE)
        [run] = glue_runs()
        actions = job_lines(out)[0]["target"]["actions"]
        assert code == 3 and f"job run {run['Id']} of {JOB} ended SUCCEEDED: 0 of its {actions} actions" in capsys.readouterr().err
        assert len(dangling(out / "ledger.jsonl")) == actions and objects(world) == before
        assert not [ln for ln in read_lines(out / "ledger.jsonl") if ln["phase"] == "outcome" and ln["store"] in STORES
                    and ln["action"] in ("anonymize_object", "rewrite_object", "delete_versions")]
        assert plan["run"]["engine"] == "glue" and artifacts() == []
