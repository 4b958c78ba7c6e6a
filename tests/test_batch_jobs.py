"""`vigil retain --executor batch-operations` end to end against moto: a store planned from its S3
Inventory report, one job per location (created through a stand-in for the s3control client only:
tests/batch_runner.py), run by the real Lambda handler, collected into the ledger and verified by
version id; holds refused by the handler stay and are reported."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import botocore.exceptions
import botocore.handlers
import pytest
from moto import mock_aws
from vigil.retention import ledger as ledgers
from vigil.retention.batch_jobs import PREFIX, BatchSettings
from vigil.retention.batch_reports import BatchRun, Collector, open_jobs
from vigil.retention.engine import LEDGER_FILE, run_retention
from vigil.retention.keys import RetentionKeys

from tests.aging import YEAR, written_ago
from tests.batch_runner import BatchOperations
from tests.helpers import policy_variant
from tests.inventory_reports import write_report
from tests.test_iam_policy import _allowed, _record, _resources
from tests.test_retention_world import World
from vigil.aws import Aws
from vigil.cli.main import main
from vigil.errors import EnvironmentFailure
from vigil.iam_actions import actions_for
from vigil.policy import Policy

BILLING, REPLICA, INVENTORY = "example-billing", "example-billing-copy", "example-inventory"
PRIMARY, BACKUP = "us-east-1", "us-west-2"
ROLE = "arn:aws:iam::123456789012:role/vigil-batch"
SETTINGS = BatchSettings("vigil-batch-{region}", "vigil-batch-handler", ROLE)
KEYS = RetentionKeys(bytes(range(32)))
OLD_KEYS = ("invoices/s1/a b.json", "invoices/s2/x+y%.json", "invoices/s3/ü.json")


def _policy(tmp_path: Path) -> Policy:
    def change(data: dict[str, Any]) -> None:
        billing = next(s for s in data["stores"] if s["name"] == "billing")
        billing["inventory"] = {"bucket": INVENTORY, "prefix": "inventory", "config_id": "all"}
        data["stores"] = [billing]
    return policy_variant(tmp_path, change)


def _bucket(s3: Any, name: str, region: str, lock: bool = False) -> None:
    extra: dict[str, Any] = {"ObjectLockEnabledForBucket": True} if lock else {}
    if region != "us-east-1":
        extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=name, **extra)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


@pytest.fixture
def world(tmp_path: Path):
    """The billing store (Object Lock on) with a replica in the backup region, an inventory report of
    it, and the batch buckets; returns (s3 clients by region, {bucket: {key: [version ids]}})."""
    with mock_aws():
        s3 = {r: boto3.client("s3", region_name=r) for r in (PRIMARY, BACKUP)}
        _bucket(s3[PRIMARY], BILLING, PRIMARY, lock=True)
        _bucket(s3[BACKUP], REPLICA, BACKUP)
        for name, region in ((INVENTORY, PRIMARY), ("vigil-batch-us-east-1", PRIMARY), ("vigil-batch-us-west-2", BACKUP)):
            _bucket(s3[region], name, region)
        s3[PRIMARY].put_bucket_replication(Bucket=BILLING, ReplicationConfiguration={
            "Role": "arn:aws:iam::123456789012:role/replication",
            "Rules": [{"ID": "all", "Status": "Enabled", "Priority": 1, "Filter": {"Prefix": ""},
                       "DeleteMarkerReplication": {"Status": "Disabled"}, "Destination": {"Bucket": f"arn:aws:s3:::{REPLICA}"}}]})
        versions: dict[str, dict[str, list[str]]] = {BILLING: {}, REPLICA: {}}
        for bucket, region in ((BILLING, PRIMARY), (REPLICA, BACKUP)):
            for key in OLD_KEYS:
                with written_ago(8 * YEAR):  # past billing's seven years
                    versions[bucket].setdefault(key, []).append(s3[region].put_object(Bucket=bucket, Key=key, Body=b"{}")["VersionId"])
            with written_ago(YEAR):
                s3[region].put_object(Bucket=bucket, Key="invoices/s4/recent.json", Body=b"{}")
        write_report(s3[PRIMARY], BILLING, INVENTORY, "all", datetime.now(UTC))
        yield s3, versions


def _ledger(out: Path) -> list[dict[str, Any]]:
    return list(ledgers.read_lines(out / LEDGER_FILE))


def _present(s3: Any, bucket: str) -> set[tuple[str, str]]:
    answer = s3.list_object_versions(Bucket=bucket)
    return {(v["Key"], v["VersionId"]) for v in answer.get("Versions", [])}


def _run(policy: Policy, out: Path, service: BatchOperations, apply: bool):
    aws = Aws()
    out.mkdir(exist_ok=True)
    batch = BatchRun(aws, KEYS, SETTINGS, apply, control=service.client)
    return run_retention(aws, policy, KEYS, datetime.now(UTC), out, "run", apply=apply, batch=batch)


def _setup(s3, tmp_path: Path):
    """The test's policy, S3 Batch Operations standing in over moto, and the run folder."""
    policy = _policy(tmp_path)
    return policy, BatchOperations(s3, policy, datetime.now(UTC)), tmp_path / "out"


def test_jobs_per_location_run_by_the_handler_then_collected_and_verified(world, tmp_path: Path) -> None:
    s3, versions = world
    policy, service, out = _setup(s3, tmp_path)
    before = {b: _present(s3[r], b) for b, r in ((BILLING, PRIMARY), (REPLICA, BACKUP))}

    run = _run(policy, out, service, apply=True)

    # one job per location, each in its own region, invoking the function there; nothing deleted yet
    assert sorted((job.location, job.region, job.count) for job in run.batch_jobs) == [
        (f"arn:aws:s3:::{BILLING}", PRIMARY, 3), (f"arn:aws:s3:::{REPLICA}", BACKUP, 3)]
    assert {r["Region"]: r["Operation"]["LambdaInvoke"]["FunctionArn"] for r in service.requests} == {
        PRIMARY: "arn:aws:lambda:us-east-1:123456789012:function:vigil-batch-handler",
        BACKUP: "arn:aws:lambda:us-west-2:123456789012:function:vigil-batch-handler"}
    assert all(r["ConfirmationRequired"] is False for r in service.requests), "--apply: the job runs when AWS gets to it"
    assert {b: _present(s3[r], b) for b, r in ((BILLING, PRIMARY), (REPLICA, BACKUP))} == before
    plan = json.loads((out / "retention-plan.json").read_text())
    assert plan["stores"][0]["verify"]["status"] == "pending"
    assert {j["job_id"] for j in plan["batch_jobs"]} == set(service.jobs)

    # the intent (with the manifest's SHA-256) is in the ledger before the job, and the manifest is what S3 holds
    lines = _ledger(out)
    for job in run.batch_jobs:
        mine = [(line["phase"], line) for line in lines if line["action_id"] == job.token]
        assert [phase for phase, _ in mine] == ["intent", "job"]
        manifest = mine[0][1]["target"]["manifest"]
        region = job.region
        body = s3[region].get_object(Bucket=manifest["bucket"], Key=manifest["key"])["Body"].read()
        assert hashlib.sha256(body).hexdigest() == manifest["sha256"] and manifest["key"].startswith(PREFIX)
        bucket = job.location.removeprefix("arn:aws:s3:::")
        rows = list(csv.reader(io.StringIO(body.decode())))
        assert {(b, unquote(k), v) for b, k, v in rows} == {(bucket, key, vs[0]) for key, vs in versions[bucket].items()}
        assert "a%20b.json" in body.decode() and "x%2By%25.json" in body.decode(), "keys URL-encoded"
        assert mine[1][1]["target"]["job_id"] == job.job_id

    # a legal hold placed after the plan: the handler refuses that version
    held_key = OLD_KEYS[0]
    held_version = versions[BILLING][held_key][0]
    s3[PRIMARY].put_object_legal_hold(Bucket=BILLING, Key=held_key, VersionId=held_version, LegalHold={"Status": "ON"})
    for job_id in service.jobs:
        service.run(job_id)

    collected = Collector(Aws(), KEYS, SETTINGS, control=service.client).collect(
        ledgers.Ledger(out / LEDGER_FILE, "collect", policy.sha256, KEYS.fingerprint))
    by_location = {job.location: job for job in collected}
    billing = by_location[f"arn:aws:s3:::{BILLING}"]
    assert billing.status == "Complete" and billing.results["held"] == 1 and billing.results["deleted"] == 2
    assert billing.remaining == 0 and not billing.failed, "a held version is left on purpose: verify passes"
    assert (held_key, held_version) in _present(s3[PRIMARY], BILLING)
    assert "invoices/s4/recent.json" in {k for k, _ in _present(s3[PRIMARY], BILLING)}
    assert all(key == held_key for key, _ in _present(s3[PRIMARY], BILLING) if key in OLD_KEYS)

    replica = by_location[f"arn:aws:s3:::{REPLICA}"]
    assert replica.results["deleted"] == 3 and replica.remaining == 0 and not replica.failed
    assert not {key for key, _ in _present(s3[BACKUP], REPLICA)} & set(OLD_KEYS), "the replica's own job, in its region"

    lines = _ledger(out)
    outcome = next(line for line in lines if line["phase"] == "outcome" and line["action_id"] == billing.token)
    assert outcome["outcome"] == "ok" and outcome["target"]["count"] == 2
    results = [line for line in lines if line["phase"] == "result" and line["action_id"] == billing.token]
    held = {v: r for line in results for v, r in line["detail"].get("held", {}).items()}
    assert held == {f"{KEYS.hash(held_key)}:{held_version}": "held: S3 Object Lock legal hold"}
    text = (out / LEDGER_FILE).read_text()
    assert not any(key in text or key.replace(" ", "%20") in text for key in OLD_KEYS), "keys only as keyed hashes"
    assert ledgers.chain_ok(out / LEDGER_FILE)


def test_dry_run_job_waits_for_a_person_and_the_next_run_collects_it(world, tmp_path: Path) -> None:
    s3, _ = world
    policy, service, out = _setup(s3, tmp_path)
    before = _present(s3[PRIMARY], BILLING)

    run = _run(policy, out, service, apply=False)
    assert run.batch_jobs and all(job.confirmation_required for job in run.batch_jobs)
    assert all(r["ConfirmationRequired"] is True for r in service.requests)
    assert all("confirms it" in job.note for job in run.batch_jobs)
    assert _present(s3[PRIMARY], BILLING) == before, "without --apply vigil deletes nothing"
    assert run.exit_code == 0

    again = _run(policy, out, service, apply=False)  # not confirmed yet: pending, nothing marked done, exit 1
    assert {job.status for job in again.batch_jobs if job.collected} == {"Suspended"}
    assert again.exit_code == 1
    assert not [line for line in _ledger(out) if line["phase"] == "outcome"]
    assert len(service.jobs) == len(run.batch_jobs), "an open job's location gets no second job"

    for job_id in service.jobs:
        service.confirm(job_id)
        service.run(job_id)
    final = _run(policy, out, service, apply=True)
    collected = [job for job in final.batch_jobs if job.collected]
    assert {job.status for job in collected} == {"Complete"} and all(job.remaining == 0 for job in collected)
    # the report still lists what the jobs deleted: no job from it, until a report made after them
    (stale,) = [job for job in final.batch_jobs if not job.collected]
    assert stale.location == f"arn:aws:s3:::{BILLING}" and stale.job_id is None and "predates" in stale.note
    assert len(service.jobs) == len(run.batch_jobs), "no second job"
    assert final.exit_code == 0
    old = {k for k, _ in _present(s3[PRIMARY], BILLING)} & set(OLD_KEYS)
    assert not old


def test_no_job_without_a_planned_version(tmp_path: Path) -> None:
    with mock_aws():
        s3 = {r: boto3.client("s3", region_name=r) for r in (PRIMARY, BACKUP)}
        _bucket(s3[PRIMARY], BILLING, PRIMARY)
        _bucket(s3[PRIMARY], INVENTORY, PRIMARY)
        with written_ago(YEAR):
            s3[PRIMARY].put_object(Bucket=BILLING, Key="invoices/s4/recent.json", Body=b"{}")
        write_report(s3[PRIMARY], BILLING, INVENTORY, "all", datetime.now(UTC))
        policy = _policy(tmp_path)
        service = BatchOperations(s3, policy, datetime.now(UTC))
        run = _run(policy, tmp_path / "out", service, apply=True)
        assert run.batch_jobs == [] and service.requests == []
        assert not any(line["phase"] == "intent" for line in _ledger(tmp_path / "out"))


def test_a_crash_before_aws_answered_resumes_with_the_same_job(world, tmp_path: Path) -> None:
    """Killed after the intent, before the job id was recorded: the next run asks with the same token."""
    s3, _ = world
    policy, service, out = _setup(s3, tmp_path)
    _run(policy, out, service, apply=True)
    lines = (out / LEDGER_FILE).read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["phase"] != "job"]  # as if each job line was never written
    (out / LEDGER_FILE).write_text("".join(kept))
    tokens = {r["ClientRequestToken"] for r in service.requests}
    jobs = dict(service.jobs)

    again = _run(policy, out, service, apply=True)
    assert dict(service.jobs) == jobs, "no second job"
    assert {r["ClientRequestToken"] for r in service.requests} == tokens
    assert {job.job_id for job in again.batch_jobs if job.collected} == set(jobs)


def test_the_command_with_the_executor_and_nothing_due(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`vigil retain --executor batch-operations` through the CLI: nothing planned, so no job, no ledger."""
    def only_billing(data: dict[str, Any]) -> None:
        data["stores"] = [s for s in data["stores"] if s["name"] == "billing"]
    with mock_aws():
        world = World(tmp_path, monkeypatch, only_billing)
        world.bucket(BILLING)
        world.put(BILLING, "invoices/s4/recent.json", "{}")
        code, plan, out = world.retain("--executor", "batch-operations", "--batch-bucket", "vigil-batch-{region}",
                                       "--batch-function", "vigil-batch-handler", "--batch-role", ROLE, "--apply")
        assert code == 0 and "batch_jobs" not in plan and plan["run"]["mode"] == "apply"
        assert not (out / LEDGER_FILE).exists() or not any(line["phase"] == "intent" for line in _ledger(out))


def test_a_collection_killed_before_its_outcome_resumes_without_writing_results_twice(world, tmp_path: Path) -> None:
    s3, _ = world
    policy, service, out = _setup(s3, tmp_path)
    _run(policy, out, service, apply=True)
    for job_id in service.jobs:
        service.run(job_id)
    collector = Collector(Aws(), KEYS, SETTINGS, control=service.client)
    collector.collect(ledgers.Ledger(out / LEDGER_FILE, "c1", policy.sha256, KEYS.fingerprint))
    lines = (out / LEDGER_FILE).read_text().splitlines(keepends=True)
    outcomes = [i for i, line in enumerate(lines) if json.loads(line)["phase"] == "outcome"]
    (out / LEDGER_FILE).write_text("".join(lines[:outcomes[-1]]))  # killed before the last job's outcome
    killed = json.loads(lines[outcomes[-1]])

    again = collector.collect(ledgers.Ledger(out / LEDGER_FILE, "c2", policy.sha256, KEYS.fingerprint))
    assert [job.token for job in again] == [killed["action_id"]] and again[0].remaining == 0
    mine = [json.loads(line) for line in (out / LEDGER_FILE).read_text().splitlines() if json.loads(line)["action_id"] == killed["action_id"]]
    assert [line["phase"] for line in mine] == ["intent", "job", "result", "outcome"], "its result line is not written twice"
    assert mine[-1]["outcome"] == killed["outcome"] and mine[-1]["target"] == killed["target"]
    assert ledgers.chain_ok(out / LEDGER_FILE)


def test_a_failed_job_without_a_report_is_a_failure_and_its_versions_stay_planned(world, tmp_path: Path) -> None:
    s3, _ = world
    policy, service, out = _setup(s3, tmp_path)
    _run(policy, out, service, apply=True)
    for job in service.jobs.values():  # e.g. the role could not read the manifest: no task ran, no report
        job["Status"] = "Failed"
    collected = Collector(Aws(), KEYS, SETTINGS, control=service.client).collect(
        ledgers.Ledger(out / LEDGER_FILE, "c", policy.sha256, KEYS.fingerprint))
    assert all(job.failed and job.results["failed"] == job.count == job.remaining == 3 for job in collected)
    outcomes = [line for line in _ledger(out) if line["phase"] == "outcome"]
    assert len(outcomes) == 2 and {line["outcome"] for line in outcomes} == {"failed"}
    assert {line["target"]["count"] for line in outcomes} == {0}, "nothing counted as deleted"


def test_every_call_of_a_batch_run_is_allowed_by_its_iam_policy(world, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What vigil calls (not the Lambda: it has its own role) against `iam-policy retain --executor batch-operations`."""
    s3, _ = world
    policy = _policy(tmp_path)
    calls: list[tuple[str, str, dict]] = []
    monkeypatch.setattr(botocore.handlers, "BUILTIN_HANDLERS", [*botocore.handlers.BUILTIN_HANDLERS, *_record(calls)])
    service = BatchOperations(s3, policy, datetime.now(UTC))
    out = tmp_path / "out"
    _run(policy, out, service, apply=True)
    mine = len(calls)
    for job_id in service.jobs:
        service.run(job_id)
    del calls[mine:]  # the handler's calls are the Lambda's role's, not vigil's
    Collector(Aws(), KEYS, SETTINGS, control=service.client).collect(
        ledgers.Ledger(out / LEDGER_FILE, "c", policy.sha256, KEYS.fingerprint))
    assert {"s3:PutObject", "s3:GetObject", "s3:HeadObject"} <= {op for op, _, _ in calls}

    text = io.StringIO()
    with contextlib.redirect_stdout(text), contextlib.redirect_stderr(io.StringIO()):
        assert main(["iam-policy", "retain", "--policy", str(tmp_path / "policy.yaml"), "--account", "123456789012",
                     "--bucket", REPLICA, "--executor", "batch-operations", "--batch-bucket", "vigil-batch-{region}",
                     "--batch-role", ROLE]) == 0
    document = json.loads(text.getvalue())
    uncovered = {(op, action, resource) for op, region, params in calls for action in actions_for(op)
                 for resource in _resources(op, region, params) if not _allowed(document, action, resource)}
    assert not uncovered
    statements = {st["Sid"]: st for st in document["Statement"]}
    for request in service.requests:  # CreateJob and the role it passes, made through the stand-in
        assert "LambdaInvoke" in request["Operation"]
        assert statements["BatchCreateJob"]["Condition"]["StringEquals"]["s3:RequestJobOperation"] == "LambdaInvoke"
        assert request["RoleArn"] in statements["BatchPassRole"]["Resource"]
    for job in service.jobs.values():
        assert _allowed(document, "s3:DescribeJob", f"arn:aws:s3:{job['Region']}:123456789012:job/{job['JobId']}")
    assert not _allowed(document, "s3:PutObject", "arn:aws:s3:::vigil-batch-us-east-1/elsewhere/x")


def test_only_the_stores_the_executor_takes_go_to_jobs(world, tmp_path: Path) -> None:
    """A store whose policy does not say `executor: batch-operations` (without --executor) is applied locally."""
    s3, _ = world
    policy, service, out = _setup(s3, tmp_path)
    out.mkdir()
    aws = Aws()
    batch = BatchRun(aws, KEYS, SETTINGS, True, control=service.client, stores=frozenset({"some-other-store"}))
    run = run_retention(aws, policy, KEYS, datetime.now(UTC), out, "run", apply=True, batch=batch)
    assert run.batch_jobs == [] and service.requests == []
    assert run.stats is not None and run.stats.ok >= 2 and run.exit_code == 0
    assert not {key for key, _ in _present(s3[PRIMARY], BILLING)} & set(OLD_KEYS), "deleted by the local executor"


def _store_executor(value: str):
    def change(data: dict[str, Any]) -> None:
        data["stores"] = [s for s in data["stores"] if s["name"] == "billing"]
        data["stores"][0]["executor"] = value
    return change


def test_a_store_of_the_executor_by_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, _store_executor("batch-operations"))
        world.bucket(BILLING)
        world.put(BILLING, "invoices/s4/recent.json", "{}")
        code, _, out = world.retain()
        assert code == 2 and not out.exists()
        assert "store billing (policy: executor: batch-operations) needs --batch-bucket" in capsys.readouterr().err
        future = (datetime.now(UTC).replace(year=datetime.now(UTC).year + 2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for name, value in (("VIGIL_BATCH_BUCKET", "vigil-batch-{region}"), ("VIGIL_BATCH_FUNCTION", "vigil-batch-handler"),
                            ("VIGIL_BATCH_ROLE", ROLE)):
            monkeypatch.setenv(name, value)
        code, _, out = world.retain("--as-of", future)
        assert code == 2 and "--as-of in the future is a preview" in capsys.readouterr().err
        code, plan, out = world.retain()  # the settings from the environment; nothing due: no job
        assert code == 0 and "batch_jobs" not in plan
        code, plan, _ = world.retain("--executor", "local", "--as-of", future)  # --executor local overrides the policy
        assert code in (0, 1) and plan["run"]["preview"] is True


def test_a_bad_executor_in_the_policy_names_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    world = World(tmp_path, monkeypatch, _store_executor("lambda"))
    code, _, _ = world.retain()
    err = capsys.readouterr().err
    assert code == 2 and "policy.yaml:" in err and "executor" in err and "'lambda'" in err


def test_verify_that_cannot_read_a_version_leaves_the_job_open(world, tmp_path: Path) -> None:
    """AccessDenied on a planned version's HeadObject proves nothing: exit 3, no outcome; the next collect finishes."""
    s3, _ = world
    policy, service, out = _setup(s3, tmp_path)
    _run(policy, out, service, apply=True)
    for job_id in service.jobs:
        service.run(job_id)
    aws = Aws()

    def denied(params: dict[str, Any], **_kwargs: Any) -> None:
        if params.get("Bucket") == BILLING:
            raise botocore.exceptions.ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "HeadObject")

    aws.session.events.register("before-parameter-build.s3.HeadObject", denied)
    with pytest.raises(EnvironmentFailure, match="AccessDenied"):
        Collector(aws, KEYS, SETTINGS, control=service.client).collect(
            ledgers.Ledger(out / LEDGER_FILE, "c1", policy.sha256, KEYS.fingerprint))
    assert len(open_jobs(out / LEDGER_FILE)) >= 1, "the job whose versions could not be read stays open"
    again = Collector(Aws(), KEYS, SETTINGS, control=service.client).collect(
        ledgers.Ledger(out / LEDGER_FILE, "c2", policy.sha256, KEYS.fingerprint))
    assert again and all(job.remaining == 0 and not job.failed for job in again)
    assert not open_jobs(out / LEDGER_FILE)
    results = [line for line in _ledger(out) if line["phase"] == "result"]
    assert len(results) == len({line["action_id"] for line in results}), "no result line written twice"
