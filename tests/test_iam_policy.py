"""`vigil iam-policy`: actions derived from the code's call sites, mapped to IAM, scoped to the stores,
and proven complete by recording every AWS call a real check and retain make against moto."""
from __future__ import annotations

import base64
import contextlib
import io
import json
import textwrap
from pathlib import Path

import boto3
import botocore.handlers
import pytest
from vigil.checks.iam_policy import glob_match

from tests.aging import YEAR, written_ago
from tests.conftest import ROOT, loopback_moto
from tests.helpers import repo_policy
from vigil.cli.main import main
from vigil.iam_actions import actions_for, call_sites

ACCOUNT = "123456789012"


def test_operations_map_to_their_iam_actions() -> None:
    expected = {
        "s3:GetBucketEncryption": ("s3:GetEncryptionConfiguration",),
        "s3:GetPublicAccessBlock": ("s3:GetBucketPublicAccessBlock",),
        "s3:GetBucketLifecycleConfiguration": ("s3:GetLifecycleConfiguration",),
        "s3:GetBucketReplication": ("s3:GetReplicationConfiguration",),
        "s3:GetObjectLockConfiguration": ("s3:GetBucketObjectLockConfiguration",),
        "s3:ListObjectVersions": ("s3:ListBucketVersions",),
        "s3:HeadObject": ("s3:GetObject", "s3:GetObjectVersion"),
        "s3:DeleteObjects": ("s3:DeleteObject", "s3:DeleteObjectVersion"),
        "s3control:GetPublicAccessBlock": ("s3:GetAccountPublicAccessBlock",),
        "s3:ListBuckets": ("s3:ListAllMyBuckets",),
        "sts:GetCallerIdentity": (),
        "s3:GetBucketPolicy": ("s3:GetBucketPolicy",),
        "dynamodb:DescribeContinuousBackups": ("dynamodb:DescribeContinuousBackups",),
        "dynamodb:TransactWriteItems": ("dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"),
    }
    assert {op: actions_for(op) for op in expected} == expected


def test_call_sites_are_read_from_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Labels, client methods (resolved by receiver or label) and operation names passed as strings."""
    (tmp_path / "scanned_example.py").write_text(textwrap.dedent('''
        def fetch(api, call): return call()
        def _list(client, operation): return client.get_paginator(operation)
        def collect(aws, client, name):
            fetch("s3:GetBucketPolicy", lambda: client.get_bucket_policy(Bucket=name))
            control = aws.client("s3control", "us-east-1")
            control.get_public_access_block(AccountId="1")
            _list(aws.client("kms", "us-east-1"), "list_aliases")
            aws.client("dynamodb", "us-east-1").get_paginator("scan")
            client.submit(name)          # not an AWS operation
            "s3:NoSuchOperation"         # not an operation in botocore's model
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    found = {(site.operation, site.line) for site in call_sites("scanned_example")}
    assert found == {("s3:GetBucketPolicy", 5), ("s3control:GetPublicAccessBlock", 7), ("kms:ListAliases", 8), ("dynamodb:Scan", 9)}


def _record(calls: list[tuple[str, str, dict]]):
    """botocore handlers: keep each call's parameters, then record (service:Operation, region, params)."""
    def keep_params(params, context, **_):
        context["recorded_params"] = dict(params)

    def before_call(model, context, request_signer, **_):
        calls.append((f"{model.service_model.service_name}:{model.name}", request_signer.region_name, context.get("recorded_params", {})))

    return [("before-parameter-build", keep_params), ("before-call", before_call)]


def _resources(operation: str, region: str, params: dict) -> list[str]:
    """The ARNs one recorded call acts on (what IAM authorizes it against)."""
    service = operation.split(":")[0]
    if service == "s3" and "Bucket" in params:
        if "Key" in params:
            return [f"arn:aws:s3:::{params['Bucket']}/{params['Key']}"]
        if "Delete" in params:
            return [f"arn:aws:s3:::{params['Bucket']}/{o['Key']}" for o in params["Delete"]["Objects"]]
        return [f"arn:aws:s3:::{params['Bucket']}"]
    if service == "dynamodb" and "ResourceArn" in params:
        return [params["ResourceArn"]]
    if service == "dynamodb" and "TableName" in params:
        return [f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{params['TableName']}"]
    if service == "dynamodb" and "RequestItems" in params:
        return [f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{name}" for name in params["RequestItems"]]
    if service == "dynamodb" and "TransactItems" in params:
        return sorted({f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{body['TableName']}"
                       for item in params["TransactItems"] for body in item.values()})
    if service == "backup" and "RecoveryPointArn" in params:
        return [params["RecoveryPointArn"]]
    if service == "kms" and "KeyId" in params:
        key = params["KeyId"]
        return [key if key.startswith("arn:") else f"arn:aws:kms:{region}:{ACCOUNT}:key/{key}"]
    return ["*"]


def _allowed(policy: dict, action: str, resource: str) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or "Condition" in statement:
            continue
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if any(glob_match(a, action, ignore_case=True) for a in statement["Action"]) and \
                any(glob_match(r, resource) for r in resources):
            return True
    return False


def _uncovered(policy: dict, calls: list[tuple[str, str, dict]]) -> set[tuple[str, str, str]]:
    return {(op, action, resource) for op, region, params in calls for action in actions_for(op)
            for resource in _resources(op, region, params) if not _allowed(policy, action, resource)}


def _iam_policy(command: str, endpoint: str) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["iam-policy", command, "--policy", str(ROOT / "policy.yaml"), "--account", ACCOUNT, "--discover-replicas", "--endpoint-url", endpoint]) == 0
    return json.loads(out.getvalue())


def _seed_records(primary: str) -> None:
    """Personal data in the stores, so retention reads, rewrites and deletes objects and items.

    moto enforces the TLS and MFA denies, which plain-http loopback calls without MFA cannot
    satisfy: the two buckets written here lose their Deny statements (this test is about which
    calls are made, not about compliance).
    """
    s3 = boto3.client("s3", region_name=primary)
    for bucket in ("example-billing", "example-usage-logs", "example-contacts"):
        document = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        document["Statement"] = [st for st in document["Statement"] if st["Effect"] != "Deny"]
        s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
    with written_ago(8 * YEAR):  # past billing's seven years
        s3.put_object(Bucket="example-billing", Key="invoices/2019-01.json", Body=b'{"amount": 1}')
    lines = [{"ts": "2020-01-01T10:00:00Z", "ip": "203.0.113.7", "user_agent": "x", "account_id": "a1", "email": "a@b.c",
              "path": "/", "status": 200} for _ in range(6)]
    s3.put_object(Bucket="example-usage-logs", Key="web/2020-01-01.jsonl", Body="\n".join(json.dumps(r) for r in lines).encode())
    s3.put_object(Bucket="example-contacts", Key="contacts/acct-1.json", Body=b'{"name": "Ada", "email": "ada@example.com"}')
    dynamodb = boto3.client("dynamodb", region_name=primary)
    dynamodb.put_item(TableName="referrals", Item={"id": {"S": "r1"}, "created_at": {"S": "2020-01-01T00:00:00Z"}})
    dynamodb.put_item(TableName="accounts", Item={"id": {"S": "acct-1"}, "account_id": {"S": "acct-1"},
                                                  "closed_at": {"S": "2020-02-01T00:00:00Z"}})



@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Every AWS call of `vigil check` and `vigil retain --apply` on the seeded estate, and the printed policies."""
    from tests.test_e2e_check import seed

    tmp = tmp_path_factory.mktemp("iam")
    calls: dict[str, list] = {"check": [], "subject": [], "retain": []}
    with loopback_moto() as endpoint:
        with pytest.MonkeyPatch.context() as env:
            for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1"),
                                ("AWS_CONFIG_FILE", "/dev/null"), ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
                                ("VIGIL_PSEUDONYM_KEY", base64.b64encode(b"k" * 32).decode()), ("AWS_ENDPOINT_URL", endpoint)):
                env.setenv(name, value)
            policy = repo_policy()
            seed(policy)
            _seed_records(policy.regions.primary)
            env.delenv("AWS_ENDPOINT_URL")
            quiet = io.StringIO()
            builtin = list(botocore.handlers.BUILTIN_HANDLERS)  # every new botocore session registers these
            runs = (("check", ["check"]), ("subject", ["subject", "find", "acct-1"]),
                    ("subject", ["subject", "erase", "acct-1", "--apply"]),
                    ("retain", ["retain", "--apply"]))
            for index, (command, argv) in enumerate(runs):
                env.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*builtin, *_record(calls[command])])
                with contextlib.redirect_stdout(quiet):
                    code = main([*argv, "--policy", policy.source_path, "--endpoint-url", endpoint, "--output", str(tmp / str(index))])
                env.setattr(botocore.handlers, "BUILTIN_HANDLERS", builtin)
                assert code in (0, 1), (argv, code, quiet.getvalue()[-2000:])
            policies = {command: _iam_policy(command, endpoint) for command in calls}
    return {"calls": calls, "policies": policies, "tmp": tmp}


def _stack_retention_role() -> dict:
    """The inline policy the stack (infra/) gives its retention role, as the Pulumi program declares it."""
    from vigil.infra.mocks import declare_stack
    from vigil.infra.settings import StackSettings

    policy = repo_policy()
    name = f"{StackSettings.defaults(policy).retention_role}-permissions"
    (declared,) = [r for r in declare_stack(policy).resources if r.type == "aws:iam/rolePolicy:RolePolicy" and r.name == name]
    return json.loads(declared.inputs["policy"])


@pytest.fixture(scope="module")
def shipped(recorded: dict) -> dict[str, dict]:
    """Every policy Vigil ships or generates, by where it comes from."""
    return {"iam-policy check": recorded["policies"]["check"], "iam-policy retain": recorded["policies"]["retain"],
            "iam-policy subject": recorded["policies"]["subject"],
            "deploy/iam-policy.json": json.loads((ROOT / "deploy" / "iam-policy.json").read_text()),
            "stack retention role": _stack_retention_role()}


# Which shipped policies must allow each command's recorded calls, resources included.
RUNS_UNDER = {"check": ("iam-policy check", "deploy/iam-policy.json"),
              "retain": ("iam-policy retain", "deploy/iam-policy.json", "stack retention role"),
              "subject": ("iam-policy subject", "deploy/iam-policy.json")}


@pytest.mark.parametrize("command", sorted(RUNS_UNDER))
def test_every_recorded_call_is_allowed_by_each_policy_it_runs_under(recorded: dict, shipped: dict, command: str) -> None:
    """Action and resource ARN of every call `check`, `retain --apply` and `subject erase --apply` made (issue 15 item 8)."""
    calls = recorded["calls"][command]
    assert calls
    for source in RUNS_UNDER[command]:
        assert not _uncovered(shipped[source], calls), source


def test_writes_and_deletes_are_scoped_to_the_stores(shipped: dict) -> None:
    for source, policy in shipped.items():
        for statement in policy["Statement"]:
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            writes = [a for a in statement["Action"] if a.split(":")[1].startswith(("Put", "Delete", "Update", "BatchWrite"))]
            assert not writes or ("*" not in resources and "arn:aws:s3:::*/*" not in resources), (source, statement)
    for source in ("iam-policy retain", "deploy/iam-policy.json", "stack retention role"):
        assert not _allowed(shipped[source], "backup:DeleteRecoveryPoint", f"arn:aws:backup:ap-south-1:{ACCOUNT}:recovery-point:x"), source
        assert not _allowed(shipped[source], "backup:DeleteRecoveryPoint", "arn:aws:backup:us-east-1:999999999999:recovery-point:x") \
            or source == "deploy/iam-policy.json", source  # the shipped file names no account: it is deployed into one
        assert _allowed(shipped[source], "backup:DeleteRecoveryPoint", f"arn:aws:backup:us-east-1:{ACCOUNT}:recovery-point:x"), source
        assert not _allowed(shipped[source], "s3:DeleteObjectVersion", "arn:aws:s3:::unrelated-bucket/x"), source
    subject = shipped["iam-policy subject"]
    assert not any("backup:DeleteRecoveryPoint" in st["Action"] for st in subject["Statement"]), "subject never deletes recovery points"
    for source in ("iam-policy retain", "deploy/iam-policy.json"):
        assert _allowed(shipped[source], "dynamodb:BatchGetItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/accounts"), source
        assert _allowed(shipped[source], "dynamodb:ConditionCheckItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/accounts"), source


def test_check_policy_covers_every_call_check_makes(recorded: dict) -> None:
    calls = recorded["calls"]["check"]
    operations = {op for op, _, _ in calls}
    # the run really went through collectors and retention verify (RET-02 reads the objects)
    assert {"s3:GetBucketEncryption", "s3control:GetPublicAccessBlock", "kms:GetKeyRotationStatus",
            "s3:ListObjectVersions", "s3:GetObject", "dynamodb:Scan", "sts:GetCallerIdentity"} <= operations, operations
    assert not _uncovered(recorded["policies"]["check"], calls)


def test_retain_policy_covers_every_call_retain_makes(recorded: dict) -> None:
    calls = recorded["calls"]["retain"]
    operations = {op for op, _, _ in calls}
    assert {"s3:ListObjectVersions", "s3:DeleteObjects", "s3:PutObject", "dynamodb:BatchWriteItem"} <= operations, operations
    assert not _uncovered(recorded["policies"]["retain"], calls)


def test_subject_policy_covers_every_call_find_and_erase_make(recorded: dict) -> None:
    calls = recorded["calls"]["subject"]
    operations = {op for op, _, _ in calls}
    assert {"s3:ListObjectVersions", "s3:DeleteObjects", "dynamodb:BatchWriteItem"} <= operations, operations
    assert not _uncovered(recorded["policies"]["subject"], calls)


def test_policies_are_least_privilege(recorded: dict) -> None:
    for command, policy in recorded["policies"].items():
        for statement in policy["Statement"]:
            assert all("*" not in action for action in statement["Action"]), (command, statement)
            if any(a.startswith(("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "dynamodb:Scan", "dynamodb:BatchWriteItem"))
                   for a in statement["Action"]) and command == "retain":
                assert statement["Resource"] != "*" and all("example-" in r or "/accounts" in r or "/referrals" in r
                                                            for r in statement["Resource"]), statement
    retain = recorded["policies"]["retain"]
    assert not _allowed(retain, "s3:DeleteObject", "arn:aws:s3:::some-other-bucket/key")
    assert not _allowed(retain, "s3:GetBucketPolicy", "arn:aws:s3:::example-billing"), "retain never reads bucket policies"
    assert not _allowed(recorded["policies"]["check"], "s3:DeleteObject", "arn:aws:s3:::example-billing/x"), "check deletes nothing"
    assert _allowed(retain, "s3:DeleteObjectVersion", "arn:aws:s3:::example-contacts-replica/contacts/x.json"), "replicas discovered"


def test_subject_and_bad_input(capsys: pytest.CaptureFixture) -> None:
    policy = str(ROOT / "policy.yaml")
    assert main(["iam-policy", "subject", "--policy", policy, "--account", ACCOUNT]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["Version"] == "2012-10-17"
    assert main(["iam-policy", "check", "--policy", policy, "--account", "nope"]) == 2
    assert main(["iam-policy", "check", "--policy", policy, "--sources"]) == 0
    assert "vigil.checks.collectors.s3:" in capsys.readouterr().err


def _logs_policy(tmp_path: Path) -> Path:
    """A policy of one S3 store (no tables), its subjects read from the keys."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(textwrap.dedent("""\
        version: 1
        organization: Example
        regions: {primary: us-east-1, backup: us-west-2, allowed: [us-east-1, us-west-2]}
        keys:
          evidence: {source: env, name: VIGIL_TEST_EVIDENCE_KEY}
          pseudonymize: {source: env, name: VIGIL_PSEUDONYM_KEY}
        categories:
          logs: {retain: P30D, action: delete}
        stores:
          - {name: logs, kind: s3, bucket: example-logs, category: logs, subject_from_key: "logs/{subject}/*"}
        """))
    return policy


def test_tables_under_a_customer_key_get_kms_only_through_dynamodb(recorded: dict, tmp_path: Path) -> None:
    """DynamoDB decrypts a CMK table's key with the caller's permissions: retain and subject need
    kms:Decrypt (and the writes' Encrypt/GenerateDataKey), check's RET-02 scan only the reads, all
    usable only through DynamoDB; a policy without tables gets no such grant."""
    wanted = {"retain": {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"},
              "subject": {"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"},
              "check": {"kms:Decrypt", "kms:DescribeKey"}}
    for command, actions in wanted.items():
        (statement,) = [s for s in recorded["policies"][command]["Statement"] if s["Sid"] == "StoreKeysViaDynamoDB"]
        assert set(statement["Action"]) == actions, command
        services = statement["Condition"]["StringEquals"]["kms:ViaService"]
        assert services and all(v.startswith("dynamodb.") and v.endswith(".amazonaws.com") for v in services)
        assert all(r.startswith("arn:aws:kms:") and ":key/" in r for r in statement["Resource"])
    only_s3 = _logs_policy(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["iam-policy", "retain", "--policy", str(only_s3)]) == 0
    assert "StoreKeysViaDynamoDB" not in out.getvalue() and "StoreKeysViaS3" in out.getvalue()


def test_lock_bucket_calls_are_granted_only_with_lock_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`retain --apply --lock-bucket` and `subject erase --apply --lock-bucket` take S3 lock objects:
    `iam-policy retain|subject --lock-bucket` grants exactly those calls, under the lock prefix only."""
    from moto import mock_aws

    policy = _logs_policy(tmp_path)
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(b"k" * 32).decode())
    monkeypatch.setenv("VIGIL_TEST_EVIDENCE_KEY", base64.b64encode(b"e" * 32).decode())
    calls: list[tuple[str, str, dict]] = []
    builtin = list(botocore.handlers.BUILTIN_HANDLERS)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in ("example-logs", "vigil-locks"):
            s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket="example-logs", VersioningConfiguration={"Status": "Enabled"})
        with written_ago(YEAR):
            s3.put_object(Bucket="example-logs", Key="logs/acct-1/a.log", Body=b"x")  # retain deletes it
        s3.put_object(Bucket="example-logs", Key="logs/acct-1/b.log", Body=b"y")  # the erasure does
        monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*builtin, *_record(calls)])
        with contextlib.redirect_stdout(io.StringIO()):
            for argv in (["retain", "--apply"], ["subject", "erase", "acct-1", "--apply"]):
                code = main([*argv, "--policy", str(policy), "--lock-bucket", "vigil-locks", "--output", str(tmp_path / argv[0])])
                assert code == 0, argv
        monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", builtin)
    lock_calls = [c for c in calls if c[2].get("Bucket") == "vigil-locks"]
    assert {op for op, _, _ in lock_calls} >= {"s3:PutObject", "s3:DeleteObject"}, "the runs took and released lock objects"
    for command in ("retain", "subject"):
        for flags, covered in (([], False), (["--lock-bucket", "vigil-locks"], True)):
            out = io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
                assert main(["iam-policy", command, "--policy", str(policy), "--account", ACCOUNT, *flags]) == 0
            document = json.loads(out.getvalue())
            assert (not _uncovered(document, lock_calls)) is covered, (command, flags)
            assert not _allowed(document, "s3:PutObject", "arn:aws:s3:::vigil-locks/elsewhere"), "only under the lock prefix"


def test_sources_are_parsed_once_and_threads_get_the_same_call_sites() -> None:
    """Pulumi runs a program's callbacks on more than one thread; CPython 3.11's AST constructor
    fails when two threads parse at once (python/cpython#106905), so parsing is serialized and
    cached: every thread sees the sequential answer, and a source is one tree."""
    from concurrent.futures import ThreadPoolExecutor

    from vigil.iam_actions import module_path, parsed

    modules = ["vigil.retention.engine", "vigil.retention.apply", "vigil.checks.collectors", "vigil.locks", "vigil.evidence.upload"]
    expected = {m: call_sites(m) for m in modules}
    with ThreadPoolExecutor(max_workers=8) as pool:
        for module, sites in zip(modules * 8, pool.map(call_sites, modules * 8), strict=True):
            assert sites == expected[module]
    path = module_path("vigil.locks")
    assert path is not None and parsed(path) is parsed(path)
