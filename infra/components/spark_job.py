"""Where `vigil retain --engine spark` runs on AWS: a Glue 5 job, or an EMR Serverless application.

Glue 5.0 is Spark 3.5 on Python 3.11; Vigil reaches its workers as a wheel through
`--additional-python-modules` (an S3 URI), and the job's script is deploy/spark_job.py, which
runs `vigil retain --engine spark` on the job's own SparkSession. One run at a time
(`max_concurrent_runs` 1): two retention runs over the same stores would contend for their
locks. EMR Serverless is the alternative for accounts that already run it: a Spark
application on release emr-7.x (Spark 3.5), stopped when idle, capped in size.

`vigil retain --engine glue|emr-serverless` drives these jobs (retention/cluster_engine.py): it
uploads a plan slice under vigil/runs/ of the artifacts bucket and starts a run with
--vigil-slice (deploy/spark_job.py's slice mode). Given `job_role_name`, the job's role also gets
the artifacts it reads (vigil/: the script, the wheel, the slices) and the results it writes
(vigil/runs/); given `driver_role`, the role the driver runs as gets what `vigil iam-policy retain
--engine glue|emr-serverless` derives from the driver's code (vigil.permissions.ENGINES).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from vigil.retention.cluster_engine import SCRIPT_KEY

from vigil.permissions import ENGINES, RUNS_PREFIX, Targets, build

GLUE_VERSION = "5.0"  # Spark 3.5, Python 3.11
EMR_RELEASE = "emr-7.5.0"  # Spark 3.5


@dataclass
class SparkJobArgs:
    name: str  # e.g. "vigil-retain"
    provider: aws.Provider
    role_arn: pulumi.Input[str]  # the retention role (the same actions as the local engine's)
    artifacts_bucket: str  # holds the wheel and the job script
    wheel_key: str  # e.g. "vigil/vigil-0.9.0-py3-none-any.whl"
    script_key: str = SCRIPT_KEY
    retain_args: str = "[]"  # JSON list of `vigil retain` arguments (--policy s3://..., --apply, ...)
    workers: int = 10
    worker_type: str = "G.1X"  # 1 DPU: 4 vCPU, 16 GB
    timeout_minutes: int = 24 * 60
    emr_serverless: bool = False  # also declare the EMR Serverless application
    emr_max_vcpu: str = "64 vCPU"
    emr_max_memory: str = "256 GB"
    job_role_name: pulumi.Input[str] | None = None  # the role_arn's name: grant it the artifacts (slices in, results out)
    artifacts_key_arn: pulumi.Input[str] | None = None  # the artifacts bucket's KMS key, if a customer key
    driver_role: pulumi.Input[str] | None = None  # the role `vigil retain --engine glue|emr-serverless` runs as
    account_id: pulumi.Input[str] = "*"  # for the driver's grants
    regions: tuple[str, ...] = ("us-east-1",)  # where the driver starts runs (the policy's primary region)
    emr_role_arn: str | None = None  # the EMR Serverless execution role the driver passes


class SparkRetentionJob(pulumi.ComponentResource):
    glue_job: aws.glue.Job
    emr_application: aws.emrserverless.Application | None

    def __init__(self, name: str, args: SparkJobArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:retention:SparkRetentionJob", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, provider=args.provider)
        bucket = f"s3://{args.artifacts_bucket}"
        self.glue_job = aws.glue.Job(
            f"{name}-glue", name=args.name, role_arn=args.role_arn, glue_version=GLUE_VERSION,
            command=aws.glue.JobCommandArgs(name="glueetl", python_version="3",
                                            script_location=f"{bucket}/{args.script_key}"),
            default_arguments={
                "--additional-python-modules": f"{bucket}/{args.wheel_key}",
                "--job-language": "python",
                "--vigil-args": args.retain_args,
            },
            worker_type=args.worker_type, number_of_workers=args.workers, timeout=args.timeout_minutes,
            max_retries=0,  # a failed run is resumed by the next one from its ledger, never re-run blindly
            execution_property=aws.glue.JobExecutionPropertyArgs(max_concurrent_runs=1),
            opts=child)
        self.emr_application = None
        if args.emr_serverless:
            self.emr_application = aws.emrserverless.Application(
                f"{name}-emr", name=args.name, release_label=EMR_RELEASE, type="spark",
                maximum_capacity=aws.emrserverless.ApplicationMaximumCapacityArgs(
                    cpu=args.emr_max_vcpu, memory=args.emr_max_memory),
                auto_start_configuration=aws.emrserverless.ApplicationAutoStartConfigurationArgs(enabled=True),
                auto_stop_configuration=aws.emrserverless.ApplicationAutoStopConfigurationArgs(
                    enabled=True, idle_timeout_minutes=15),
                opts=child)
        iam = pulumi.ResourceOptions(parent=self, provider=args.provider)
        if args.job_role_name is not None:
            aws.iam.RolePolicy(f"{name}-artifacts", role=args.job_role_name, opts=iam, policy=pulumi.Output.from_input(
                args.artifacts_key_arn).apply(lambda key: json.dumps(job_artifacts(args.artifacts_bucket, key))))
        if args.driver_role is not None:
            engine = "emr-serverless" if args.emr_serverless and self.emr_application is not None else "glue"
            app = self.emr_application.id if self.emr_application is not None else pulumi.Output.from_input("")
            aws.iam.RolePolicy(f"{name}-driver", role=args.driver_role, opts=iam, policy=pulumi.Output.all(
                args.account_id, app).apply(lambda values: json.dumps(driver_permissions(args, engine, *values))))
        outputs = {"glueJob": self.glue_job.name}
        if self.emr_application is not None:
            outputs["emrApplication"] = self.emr_application.id
        self.register_outputs(outputs)


def job_artifacts(bucket: str, key_arn: str | None) -> dict:
    """The job's role: read vigil/ (script, wheel, environment, slices); write the results under vigil/runs/."""
    statements = [
        {"Sid": "ReadVigilArtifacts", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": [f"arn:aws:s3:::{bucket}/vigil/*"]},
        {"Sid": "WriteResults", "Effect": "Allow", "Action": "s3:PutObject", "Resource": [f"arn:aws:s3:::{bucket}/{RUNS_PREFIX}*"]},
    ]
    if key_arn:
        statements.append({"Sid": "ArtifactsKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
                           "Resource": [key_arn]})
    return {"Version": "2012-10-17", "Statement": statements}


def driver_permissions(args: SparkJobArgs, engine: str, account_id: str, application_id: str) -> dict:
    """What `vigil iam-policy retain --engine ...` adds, on this job (or application), bucket and role."""
    targets = Targets(list(args.regions), account_id, [], [], artifacts_bucket=args.artifacts_bucket,
                      glue_job=args.name if engine == "glue" else None,
                      emr_application=application_id or None if engine == "emr-serverless" else None,
                      emr_role=args.emr_role_arn)
    return build(ENGINES[engine], targets)
