"""Pulumi declaration of Vigil's scheduled job on AWS Lambda: the function, its least-privilege
role, and one EventBridge rule per job of the policy's `schedule:` section.

Import it into a stack (the infra/ program, or your own):

    import sys; sys.path.insert(0, "deploy")
    from lambda_schedule import VigilScheduledLambda
    VigilScheduledLambda("vigil-job", policy, code=pulumi.FileArchive("build/lambda"),
                         environment={"VIGIL_UPLOAD": "s3://example-evidence/packs"},
                         replicas={"example-contacts": ["example-contacts-replica"]})

`replicas` names, per store bucket, the buckets its replication rules copy to (the infra/
stack's `replicas` output); the role may act on those copies too, and on no other bucket.

`code` is the folder deploy/build_lambda.sh makes (Vigil, its run-time dependencies, the
handler and the policy file). EventBridge schedules run in UTC, as the policy's times do.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from vigil.policy import Policy
from vigil.scheduler.iam import job_policy
from vigil.scheduler.phrases import phrases_of

LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
LOGS_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


class VigilScheduledLambda(pulumi.ComponentResource):
    def __init__(self, name: str, policy: Policy, code: pulumi.Archive, environment: dict[str, str] | None = None,
                 iam_policy: dict[str, Any] | None = None, replicas: Mapping[str, Iterable[str]] | None = None, memory_mb: int = 1024, timeout_s: int = 900,
                 log_retention_days: int = 365, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vigil:deploy:ScheduledLambda", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        phrases = phrases_of(policy.schedule)
        env = dict(environment or {})
        signing = env.get("VIGIL_SIGNING_KEY", "")
        document = iam_policy or job_policy(policy, replicas or {}, evidence_bucket=_bucket_of(env.get("VIGIL_UPLOAD")),
                                            lock_bucket=env.get("VIGIL_LOCK_BUCKET"),
                                            signing_key=signing if signing.startswith("kms:") else None)

        self.role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps(LAMBDA_TRUST), opts=child)
        self.role_policy = aws.iam.RolePolicy(f"{name}-job", role=self.role.id, policy=json.dumps(document), opts=child)
        aws.iam.RolePolicyAttachment(f"{name}-logs", role=self.role.name, policy_arn=LOGS_POLICY, opts=child)
        self.function = aws.lambda_.Function(
            name, role=self.role.arn, runtime="python3.11", handler="lambda_handler.handler", code=code,
            memory_size=memory_mb, timeout=timeout_s,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables={"VIGIL_POLICY": "policy.yaml", **env}),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]))
        aws.cloudwatch.LogGroup(f"{name}-logs", name=self.function.name.apply(lambda n: f"/aws/lambda/{n}"),
                                retention_in_days=log_retention_days, opts=child)
        self.rules: dict[str, aws.cloudwatch.EventRule] = {}
        for kind, phrase in phrases.items():
            rule = aws.cloudwatch.EventRule(f"{name}-{kind}", schedule_expression=phrase.eventbridge(),
                                            description=f"vigil {kind}: {phrase.text} (UTC), from the policy's schedule",
                                            opts=child)
            aws.cloudwatch.EventTarget(f"{name}-{kind}", rule=rule.name, arn=self.function.arn,
                                       input=json.dumps({"job": kind}),
                                       retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(maximum_retry_attempts=0),
                                       opts=child)
            aws.lambda_.Permission(f"{name}-{kind}", action="lambda:InvokeFunction", function=self.function.name,
                                   principal="events.amazonaws.com", source_arn=rule.arn, opts=child)
            self.rules[kind] = rule
        self.register_outputs({"function_arn": self.function.arn, "role_arn": self.role.arn})


def _bucket_of(url: str | None) -> str | None:
    return url[len("s3://"):].split("/", 1)[0] if url and url.startswith("s3://") else None
