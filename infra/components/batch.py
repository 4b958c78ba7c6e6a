"""S3 Batch Operations for `vigil retain --executor batch-operations` (issue 19): the Lambda the jobs
invoke, its role, and the role the jobs run as.

The Lambda (deploy/batch_handler.handler, packaged by deploy/build_lambda.sh) is declared in
every region of the policy: a job invokes a function of its own region, and a replica's job runs
in the replica's region. Its role gets what `vigil.permissions.BATCH_TASK` derives from the
handler's code, on the stores and their replicas (reads, the rewrite, the version deletes, the
keys' use through S3, the policy's key source, the subjects table). The jobs' role trusts
`batchoperations.s3.amazonaws.com` and may only invoke those functions, read the manifests vigil
writes under vigil/batch/ of each region's batch bucket and write the completion reports there.
The role `vigil retain --executor batch-operations` runs as gets what `vigil iam-policy retain`
adds for that executor (CreateJob for LambdaInvoke jobs, DescribeJob, PassRole of the jobs' role
to Batch Operations only, the batch buckets' vigil/batch/).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from vigil.retention.batch_jobs import EXECUTOR

from vigil.permissions import BATCH_PREFIX, BATCH_TASK, EXECUTORS, Targets, build
from vigil.policy import Policy

LOGS_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
HANDLER = "batch_handler.handler"
RUNTIME = "python3.11"


def trust(service: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]})


@dataclass
class BatchOperationsArgs:
    policy: Policy
    providers: Mapping[str, aws.Provider]  # region -> provider: a function in each
    account_id: pulumi.Input[str]
    replicas: Mapping[str, Sequence[str]]  # store bucket -> its replica buckets
    code: pulumi.Archive  # deploy/build_lambda.sh's folder
    function_name: str
    task_role: str
    jobs_role: str
    batch_bucket: str  # manifests and reports: one bucket per region, "{region}" in the name (as --batch-bucket takes it)
    batch_key_arns: Sequence[pulumi.Input[str]]  # the batch buckets' keys
    memory_mb: int = 1024  # a rewrite holds one object's records
    timeout_s: int = 900
    log_retention_days: int = 365
    tags: dict[str, str] = field(default_factory=dict)
    runner_role: pulumi.Input[str] | None = None  # the role `vigil retain --executor batch-operations` runs as
    environment: Mapping[str, str] = field(default_factory=dict)  # the policy's env key sources (kept secret)


class BatchOperations(pulumi.ComponentResource):
    task_role: aws.iam.Role
    jobs_role: aws.iam.Role
    functions: dict[str, aws.lambda_.Function]

    def __init__(self, name: str, args: BatchOperationsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:retention:BatchOperations", name, None, opts)
        self.args = args
        regions = list(args.providers)
        iam = pulumi.ResourceOptions(parent=self, provider=args.providers[regions[0]])
        tags = args.tags or None
        self.task_role = aws.iam.Role(args.task_role, name=args.task_role, assume_role_policy=trust("lambda.amazonaws.com"),
                                      tags=tags, opts=iam)
        task_policy = aws.iam.RolePolicy(f"{args.task_role}-permissions", role=self.task_role.name, opts=iam,
                                         policy=pulumi.Output.from_input(args.account_id).apply(
                                             lambda account: json.dumps(self.task_permissions(account))))
        aws.iam.RolePolicyAttachment(f"{args.task_role}-logs", role=self.task_role.name, policy_arn=LOGS_POLICY, opts=iam)
        self.functions = {}
        for region, provider in args.providers.items():
            child = pulumi.ResourceOptions(parent=self, provider=provider)
            function = aws.lambda_.Function(
                f"{name}-{region}", name=args.function_name, role=self.task_role.arn, runtime=RUNTIME, handler=HANDLER,
                code=args.code, memory_size=args.memory_mb, timeout=args.timeout_s, tags=tags,
                environment={"variables": pulumi.Output.secret(dict(args.environment)).apply(
                    lambda keys: {"VIGIL_POLICY": "policy.yaml", **keys})} if args.environment else
                {"variables": {"VIGIL_POLICY": "policy.yaml"}},
                opts=pulumi.ResourceOptions(parent=self, provider=provider, depends_on=[task_policy]))
            aws.cloudwatch.LogGroup(f"{name}-{region}-logs", name=f"/aws/lambda/{args.function_name}",
                                    retention_in_days=args.log_retention_days, tags=tags, opts=child)
            self.functions[region] = function
        self.jobs_role = aws.iam.Role(args.jobs_role, name=args.jobs_role,
                                      assume_role_policy=trust("batchoperations.s3.amazonaws.com"), tags=tags, opts=iam)
        aws.iam.RolePolicy(f"{args.jobs_role}-permissions", role=self.jobs_role.name, opts=iam, policy=pulumi.Output.all(
            [f.arn for f in self.functions.values()], list(args.batch_key_arns)).apply(
            lambda values: json.dumps(self.jobs_permissions(values[0], values[1]))))
        if args.runner_role is not None:  # creating, describing and collecting the jobs (retention.batch_jobs)
            aws.iam.RolePolicy(f"{name}-runner", role=args.runner_role, opts=iam, policy=pulumi.Output.all(
                args.account_id, self.jobs_role.arn).apply(lambda values: json.dumps(self.runner_permissions(*values))))
        self.register_outputs({"functions": {r: f.arn for r, f in self.functions.items()},
                               "taskRole": self.task_role.arn, "jobsRole": self.jobs_role.arn})

    def targets(self, account_id: str, jobs_role_arn: str | None = None) -> Targets:
        return Targets.of(self.args.policy, list(self.args.providers), account_id, self.args.replicas,
                          batch_bucket=self.args.batch_bucket, batch_role=jobs_role_arn)

    def task_permissions(self, account_id: str) -> dict:
        """The handler's calls (vigil.permissions, from its code) on the stores and their replicas."""
        return build([BATCH_TASK], self.targets(account_id))

    def runner_permissions(self, account_id: str, jobs_role_arn: str) -> dict:
        """What `vigil iam-policy retain` adds for `--executor batch-operations`, on these buckets and this role."""
        return build(EXECUTORS[EXECUTOR], self.targets(account_id, jobs_role_arn))

    def jobs_permissions(self, function_arns: list[str], key_arns: list[str]) -> dict:
        buckets = self.targets("*").batch_buckets
        return {"Version": "2012-10-17", "Statement": [
            {"Sid": "InvokeVigilHandler", "Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function_arns},
            {"Sid": "ReadManifests", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
             "Resource": [f"arn:aws:s3:::{b}/{BATCH_PREFIX}*" for b in buckets]},
            {"Sid": "WriteReports", "Effect": "Allow", "Action": "s3:PutObject",
             "Resource": [f"arn:aws:s3:::{b}/{BATCH_PREFIX}*" for b in buckets]},
            {"Sid": "BatchBuckets", "Effect": "Allow", "Action": "s3:GetBucketLocation",
             "Resource": [f"arn:aws:s3:::{b}" for b in buckets]},
            {"Sid": "BatchBucketKeys", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": key_arns},
        ]}
