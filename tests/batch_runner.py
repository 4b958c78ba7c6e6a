"""Plays S3 Batch Operations against moto (which has no Batch Operations): the only stand-in is for
the s3control client; S3 and the Lambda handler are real (moto S3, vigil.retention.batch_ops.handle).

`create_job` checks its request against botocore's s3control model (as AWS would reject it), checks
the manifest's ETag, and answers the same job for the same ClientRequestToken. A job created with
ConfirmationRequired waits (Suspended) until `confirm`. `run` reads the CSV manifest from S3, calls
the handler with one schema-2.0 event per row (a TemporaryFailure is retried, as S3 does), and
writes an AWS-format completion report (Report_CSV_20180820): `<prefix>/job-<id>/manifest.json`
naming the succeeded and failed result CSVs with their MD5s. Rows are written as AWS's documented
example rows are: Bucket, Key, VersionId, TaskStatus, HTTPStatusCode, ErrorCode, ResultMessage.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from datetime import datetime
from typing import Any

import botocore.session
from botocore.validate import validate_parameters
from vigil.retention.batch_ops import TEMPORARY, handle

from vigil.aws import Aws
from vigil.policy import Policy

_MODEL = botocore.session.get_session().get_service_model("s3control")


class BatchOperations:
    """S3 Batch Operations for every region: `client(region)` is what vigil gets for s3control there."""

    def __init__(self, s3: Any, policy: Policy, now: datetime):
        self.s3 = s3  # region -> a moto S3 client
        self.policy = policy
        self.now = now
        self.jobs: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []

    def client(self, region: str) -> Region:
        return Region(self, region)

    def confirm(self, job_id: str) -> None:
        """What a person does in the console (UpdateJobStatus Ready)."""
        assert self.jobs[job_id]["Status"] == "Suspended"
        self.jobs[job_id]["Status"] = "Ready"

    def run(self, job_id: str, attempts: int = 3) -> None:
        job = self.jobs[job_id]
        assert job["Status"] == "Ready", f"job {job_id} is {job['Status']}: AWS runs only confirmed jobs"
        region, s3 = job["Region"], self.s3[job["Region"]]
        where = job["Manifest"]["Location"]
        bucket, key = where["ObjectArn"].removeprefix("arn:aws:s3:::").split("/", 1)
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["ETag"].strip('"') == where["ETag"], "AWS refuses a manifest whose ETag changed"
        rows = list(csv.reader(io.StringIO(got["Body"].read().decode())))
        lambda_arn = job["Operation"]["LambdaInvoke"]["FunctionArn"]
        assert f":lambda:{region}:" in lambda_arn, "a job invokes a function in its own region"
        done: dict[str, list[list[str]]] = {"succeeded": [], "failed": []}
        for number, (row_bucket, row_key, version) in enumerate(rows):
            for _ in range(attempts):
                event = {"invocationSchemaVersion": "2.0", "invocationId": f"inv-{number}",
                         "job": {"id": job_id, "userArguments": job["Operation"]["LambdaInvoke"].get("UserArguments", {})},
                         "tasks": [{"taskId": f"task-{number}", "s3Bucket": row_bucket, "s3Key": row_key, "s3VersionId": version}]}
                (result,) = handle(Aws(), self.policy, event, self.now, region)["results"]
                if result["resultCode"] != TEMPORARY:
                    break
            ok = result["resultCode"] == "Succeeded"
            done["succeeded" if ok else "failed"].append(
                [row_bucket, row_key, version, "succeeded" if ok else "failed", "200", "" if ok else result["resultCode"],
                 result["resultString"]])
        self._report(job, done)
        job["Status"] = "Complete"
        job["ProgressSummary"] = {"TotalNumberOfTasks": len(rows), "NumberOfTasksSucceeded": len(done["succeeded"]),
                                  "NumberOfTasksFailed": len(done["failed"])}

    def _report(self, job: dict[str, Any], done: dict[str, list[list[str]]]) -> None:
        report, s3 = job["Report"], self.s3[job["Region"]]
        bucket = report["Bucket"].removeprefix("arn:aws:s3:::")
        root = f"{report['Prefix'].rstrip('/')}/job-{job['JobId']}"
        results = []
        for status, rows in done.items():
            if not rows:
                continue
            text = io.StringIO()
            csv.writer(text, lineterminator="\n").writerows(rows)
            body = text.getvalue().encode()
            key = f"{root}/results/{hashlib.sha1(body).hexdigest()}.csv"  # noqa: S324 - a name, as AWS's are
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            results.append({"TaskExecutionStatus": status, "Bucket": bucket, "MD5Checksum": hashlib.md5(body).hexdigest(),  # noqa: S324
                            "Key": key})
        manifest = {"Format": "Report_CSV_20180820", "ReportCreationDate": "2026-01-01T00:00:00.000Z", "Results": results,
                    "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage"}
        s3.put_object(Bucket=bucket, Key=f"{root}/manifest.json", Body=json.dumps(manifest).encode())


class Region:
    """The s3control client of one region: create_job and describe_job."""

    def __init__(self, service: BatchOperations, region: str):
        self.service = service
        self.region = region

    def create_job(self, **params: Any) -> dict[str, Any]:
        validate_parameters(params, _MODEL.operation_model("CreateJob").input_shape)  # raises ParamValidationError
        self.service.requests.append({"Region": self.region, **params})
        token = params["ClientRequestToken"]
        if token in self.service.tokens:  # idempotent: the same token is the same job
            return {"JobId": self.service.tokens[token]}
        job_id = str(uuid.uuid4())
        where = params["Manifest"]["Location"]
        bucket, key = where["ObjectArn"].removeprefix("arn:aws:s3:::").split("/", 1)
        head = self.service.s3[self.region].head_object(Bucket=bucket, Key=key)
        assert head["ETag"].strip('"') == where["ETag"], "AWS refuses a job whose manifest ETag does not match"
        self.service.tokens[token] = job_id
        self.service.jobs[job_id] = {**params, "JobId": job_id, "Region": self.region,
                                     "Status": "Suspended" if params.get("ConfirmationRequired") else "Ready"}
        return {"JobId": job_id}

    def describe_job(self, AccountId: str, JobId: str) -> dict[str, Any]:  # noqa: N803 - boto3's parameter names
        job = self.service.jobs[JobId]
        assert job["Region"] == self.region, "a job is described in its own region"
        return {"Job": {key: job[key] for key in ("JobId", "Status", "ConfirmationRequired", "Report", "Priority", "RoleArn")
                        if key in job} | {"ProgressSummary": job.get("ProgressSummary", {})}}
