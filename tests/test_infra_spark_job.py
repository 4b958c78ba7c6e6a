"""The Spark retention job's infrastructure under Pulumi's mocks: a Glue 5 job that gets Vigil as
a wheel, and the EMR Serverless alternative; and the job script's argument handling."""
from __future__ import annotations

import importlib.util
import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from vigil.infra.components.spark_job import EMR_RELEASE, SparkJobArgs, SparkRetentionJob
from vigil.infra.mocks import RecordingMocks, run_program

from tests.conftest import ROOT

RETAIN = json.dumps(["--policy", "s3://example-artifacts/vigil/policy.yaml", "--apply", "--max-delete", "100000"])


def declare(emr: bool, **roles: Any) -> RecordingMocks:
    """The component under Pulumi's mocks; `roles`: the role settings (job role, driver role, ...) when a test needs them."""
    mocks = RecordingMocks("us-east-1")

    def program() -> None:
        provider = aws.Provider("primary", region="us-east-1")
        SparkRetentionJob("retain", SparkJobArgs(
            name="vigil-retain", provider=provider, role_arn="arn:aws:iam::123456789012:role/vigil-retention",
            artifacts_bucket="example-artifacts", wheel_key="vigil/vigil-0.9.0-py3-none-any.whl", retain_args=RETAIN,
            emr_serverless=emr, **roles), pulumi.ResourceOptions())

    run_program(mocks, program)
    return mocks


def test_glue_job_runs_vigil_as_a_wheel_on_glue_5_one_run_at_a_time() -> None:
    [job] = [r for r in declare(emr=False).resources if r.type == "aws:glue/job:Job"]
    assert job.get("glueVersion") == "5.0" and job.get("name") == "vigil-retain"
    assert job.get("roleArn") == "arn:aws:iam::123456789012:role/vigil-retention"
    assert job.get("command") == {"name": "glueetl", "pythonVersion": "3",
                                  "scriptLocation": "s3://example-artifacts/vigil/spark_job.py"}
    arguments = job.get("defaultArguments")
    assert arguments["--additional-python-modules"] == "s3://example-artifacts/vigil/vigil-0.9.0-py3-none-any.whl"
    assert json.loads(arguments["--vigil-args"])[:2] == ["--policy", "s3://example-artifacts/vigil/policy.yaml"]
    assert job.get("executionProperty") == {"maxConcurrentRuns": 1} and job.get("maxRetries") == 0
    assert job.get("workerType") == "G.1X" and job.get("numberOfWorkers") == 10


def test_emr_serverless_application_is_declared_only_when_asked_and_stops_when_idle() -> None:
    assert not [r for r in declare(emr=False).resources if r.type.startswith("aws:emrserverless")]
    [app] = [r for r in declare(emr=True).resources if r.type == "aws:emrserverless/application:Application"]
    assert app.get("type") == "spark" and app.get("releaseLabel") == EMR_RELEASE
    assert app.get("autoStopConfiguration") == {"enabled": True, "idleTimeoutMinutes": 15}
    assert app.get("maximumCapacity") == {"cpu": "64 vCPU", "memory": "256 GB"}


def _script():
    spec = importlib.util.spec_from_file_location("spark_job", ROOT / "deploy" / "spark_job.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_job_script_passes_only_vigils_arguments_to_retain_with_the_spark_engine() -> None:
    script = _script()
    glue = ["--JOB_NAME", "vigil-retain", "--JOB_RUN_ID", "jr_1", "--vigil-args", RETAIN, "--TempDir", "s3://t/"]
    assert script.retain_argv(glue) == ["retain", "--engine", "spark", *json.loads(RETAIN)]
    for bad in (["--JOB_NAME", "x"], ["--vigil-args", "not json"], ["--vigil-args", '{"a": 1}']):
        with pytest.raises(SystemExit, match="vigil-args"):
            script.retain_argv(bad)


def declare_with_roles(emr: bool) -> RecordingMocks:
    return declare(emr, job_role_name="vigil-retention", artifacts_key_arn="arn:aws:kms:us-east-1:123456789012:key/artifacts",
                   driver_role="vigil-driver", account_id="123456789012",
                   emr_role_arn="arn:aws:iam::123456789012:role/vigil-emr" if emr else None)


def _policies(mocks: RecordingMocks) -> dict[str, dict]:
    return {r.get("role"): json.loads(r.get("policy")) for r in mocks.resources if r.type == "aws:iam/rolePolicy:RolePolicy"}


def test_the_job_role_reads_the_slices_and_writes_results_and_the_driver_gets_its_derived_grants() -> None:
    policies = _policies(declare_with_roles(emr=False))
    job = {s["Sid"]: s for s in policies["vigil-retention"]["Statement"]}
    assert job["ReadVigilArtifacts"]["Resource"] == ["arn:aws:s3:::example-artifacts/vigil/*"]
    assert job["WriteResults"] == {"Sid": "WriteResults", "Effect": "Allow", "Action": "s3:PutObject",
                                   "Resource": ["arn:aws:s3:::example-artifacts/vigil/runs/*"]}
    assert job["ArtifactsKey"]["Resource"] == ["arn:aws:kms:us-east-1:123456789012:key/artifacts"]
    driver = {s["Sid"]: s for s in policies["vigil-driver"]["Statement"]}
    assert driver["GlueJob"]["Resource"] == ["arn:aws:glue:us-east-1:123456789012:job/vigil-retain"]
    assert "glue:StartJobRun" in driver["GlueJob"]["Action"] and "EmrExecutionRole" not in driver
    assert driver["ArtifactRuns"]["Resource"] == ["arn:aws:s3:::example-artifacts/vigil/runs/*"]


def test_with_emr_serverless_the_driver_may_pass_only_the_execution_role_to_emr() -> None:
    driver = {s["Sid"]: s for s in _policies(declare_with_roles(emr=True))["vigil-driver"]["Statement"]}
    assert driver["EmrExecutionRole"]["Resource"] == ["arn:aws:iam::123456789012:role/vigil-emr"]
    assert driver["EmrExecutionRole"]["Condition"] == {"StringEquals": {"iam:PassedToService": "emr-serverless.amazonaws.com"}}
    assert all(arn.startswith("arn:aws:emr-serverless:us-east-1:123456789012:/applications/")
               for arn in driver["EmrServerlessJobRuns"]["Resource"]) and "GlueJob" not in driver
