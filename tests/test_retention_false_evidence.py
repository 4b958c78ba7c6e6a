"""Issue 13, "never false evidence": a run resumes only its own folder's ledger, of its own policy
and key; two runs never share a folder or a store; the Lambda keeps every ledger; the plan's
spool holds no readable keys and does not outlive the next run."""
from __future__ import annotations

import base64
import json
import os
import stat
import tempfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from vigil.retention import faults
from vigil.retention import ledger as ledgers
from vigil.retention.keys import load_keys
from vigil.retention.ledger import chain_ok, read_lines
from vigil.retention.locks import S3_TTL, lock_dir, store_resource
from vigil.retention.locks import _name as lock_name
from vigil.retention.spool import SPOOL_FILE

from tests.aging import YEAR, written_ago
from tests.test_deploy_lambda import load_deploy_module
from tests.test_retention_s3 import old_logs
from tests.test_retention_world import World, jsonl
from vigil.locks import FileLock, S3Lock
from vigil.policy import load_policy

BILLING = "example-billing"


def _old_billing(world: World, n: int = 2, prefix: str = "inv") -> None:
    with written_ago(8 * YEAR):
        for i in range(n):
            world.put(BILLING, f"{prefix}/{i}.json", "{}")


def _dangling(path: Path, policy_path: Path, version: str = "no-such-version") -> str:
    """A ledger left by a killed run: one delete intent without its outcome."""
    policy = load_policy(policy_path)
    keys = load_keys(policy)
    action = {"action": "delete_versions", "store": "billing", "location": BILLING, "region": "us-east-1",
              "objects": [["inv/gone.json", version]], "count": 1, "bytes": 2, "action_id": "a" * 32}
    target = {"location": f"arn:aws:s3:::{BILLING}", "versions": [f"{keys.hash('inv/gone.json')}:{version}"], "count": 1, "bytes": 2}
    path.parent.mkdir(parents=True, exist_ok=True)
    ledger = ledgers.Ledger(path, "killed-run", policy.sha256, keys.fingerprint)
    ledger.write("intent", action, target)
    ledger.close()
    return action["action_id"]


def test_a_new_folder_never_adopts_a_sibling_runs_intents(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket(BILLING)
        _old_billing(world)
        sibling = tmp_path / "runs" / "earlier" / "ledger.jsonl"
        action_id = _dangling(sibling, world.policy_path)
        before = sibling.read_bytes()
        code, _, out = world.retain("--apply", "--store", "billing", out=tmp_path / "runs" / "fresh")
        assert code == 0
        lines = list(read_lines(out / "ledger.jsonl"))
        assert all(line["action_id"] != action_id for line in lines), "the sibling's intent is not this run's"
        assert sum(line["target"]["count"] for line in lines if line["phase"] == "outcome") == 2
        assert sibling.read_bytes() == before


def test_a_ledger_is_continued_only_under_its_own_policy_and_key(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket(BILLING)
        _old_billing(world)
        out = tmp_path / "run"
        assert world.retain("--apply", "--store", "billing", out=out)[0] == 0
        first = list(read_lines(out / "ledger.jsonl"))
        assert {(line["policy_sha256"], line["key"]) for line in first} == {
            (load_policy(world.policy_path).sha256, load_keys(load_policy(world.policy_path)).fingerprint)}
        _old_billing(world, prefix="later")
        monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(b"r" * 32).decode())  # the key was rotated
        code, _, _ = world.retain("--apply", "--store", "billing", out=out)
        assert code == 2 and "another evidence key" in capsys.readouterr().err
        world.policy_path.write_text(world.policy_path.read_text().replace("grace: P7D", "grace: P8D"))  # the policy changed
        monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(bytes(range(32))).decode())
        code, _, _ = world.retain("--apply", "--store", "billing", out=out)
        assert code == 2 and "another policy" in capsys.readouterr().err
        assert len(world.versions(BILLING)) == 2, "nothing was changed"
        assert list(read_lines(out / "ledger.jsonl")) == first and chain_ok(out / "ledger.jsonl")


def test_two_runs_never_share_a_folder_or_a_store(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket(BILLING)
        _old_billing(world)
        out = tmp_path / "run"
        folder = FileLock(lock_dir() / f"folder-{lock_name(str(out.resolve()))}.lock")
        assert folder.acquire()  # a run in progress in this folder
        try:
            assert world.retain("--apply", "--store", "billing", out=out)[0] == 3
            assert "another vigil run is writing" in capsys.readouterr().err
        finally:
            folder.release()
        store = FileLock(lock_dir() / f"store-{lock_name('s3:' + BILLING)}.lock")
        assert store.acquire()  # an applying run over the same bucket, in another folder
        try:
            assert world.retain("--apply", "--store", "billing", out=tmp_path / "other")[0] == 3
            assert "changing store 'billing'" in capsys.readouterr().err
            assert world.retain("--store", "billing", out=tmp_path / "dry")[0] == 0  # a dry run changes no store
        finally:
            store.release()
        assert len(world.versions(BILLING)) == 2, "nothing was changed"

        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="vigil-locks")
        remote = S3Lock(s3, "vigil-locks", f"vigil/locks/store-{lock_name(store_resource(load_policy(world.policy_path).stores[1]))}.lock", S3_TTL)
        assert remote.acquire()  # another machine's run
        assert world.retain("--apply", "--store", "billing", "--lock-bucket", "vigil-locks", out=tmp_path / "m")[0] == 3
        assert "s3://vigil-locks/" in capsys.readouterr().err
        remote.release()
        assert world.retain("--apply", "--store", "billing", "--lock-bucket", "vigil-locks", out=tmp_path / "m2")[0] == 0
        assert world.versions(BILLING) == []
        assert "Contents" not in s3.list_objects_v2(Bucket="vigil-locks"), "the run released its lock object"


def test_the_spool_lives_in_the_run_folder_sealed_and_a_stale_one_is_cleaned(tmp_path: Path, monkeypatch) -> None:
    seen = []

    def inspect(**_: object) -> None:
        spool = out / SPOOL_FILE
        seen.append((stat.S_IMODE(spool.stat().st_mode), spool.read_bytes()))
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket("example-usage-logs")
        world.put("example-usage-logs", "web/secret-subject.jsonl", jsonl(old_logs(6)))
        out = tmp_path / "run"
        out.mkdir()
        (out / SPOOL_FILE).write_bytes(b'{"object": "web/left-by-a-kill.jsonl"}\n')  # a killed run's spool
        before = set(Path(tempfile.gettempdir()).glob("vigil-plan-*"))
        faults.hooks["rewrite.before_put"] = inspect
        try:
            assert world.retain("--apply", "--store", "web-logs", out=out)[0] == 0
        finally:
            faults.hooks.clear()
        (mode, content), = seen
        assert mode == 0o600 and b"secret-subject" not in content and b"left-by-a-kill" not in content
        assert not (out / SPOOL_FILE).exists(), "removed at the end"
        assert set(Path(tempfile.gettempdir()).glob("vigil-plan-*")) == before, "nothing spooled outside the run folder"


def test_the_lambda_never_deletes_a_ledger_and_resumes_a_killed_run_in_place(endpoint_env, tmp_path: Path) -> None:
    handler = load_deploy_module("lambda_handler")
    work = tmp_path / "work"
    killed = work / "20261101T020000Z-retain-abc123"
    action_id = _dangling(killed / "ledger.jsonl", Path(os.environ["VIGIL_POLICY"]))
    (killed / "retention-plan.json").write_text("{}")
    finished = work / "20261031T020000Z-check-def456"
    finished.mkdir()
    (finished / "ledger.jsonl").write_text('{"seq": 0}\n')
    (finished / "report.html").write_text("<html></html>")
    before = (killed / "ledger.jsonl").read_bytes()
    summary = handler.handler({"job": "retain"}, None)
    assert Path(summary["run_dir"]) == killed, "the killed run's folder is resumed, not replaced"
    after = (killed / "ledger.jsonl").read_bytes()
    assert after.startswith(before) and chain_ok(killed / "ledger.jsonl")
    assert (finished / "ledger.jsonl").read_text() == '{"seq": 0}\n' and not (finished / "report.html").exists()
    assert action_id in after.decode()


@pytest.fixture
def endpoint_env(moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tests.conftest import ROOT
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.setenv("VIGIL_POLICY", str(ROOT / "policy.yaml"))
    monkeypatch.setenv("VIGIL_REGIONS", "us-east-1")
    monkeypatch.setenv("VIGIL_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.setenv("VIGIL_APPLY", "true")
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(bytes(range(32))).decode())
    return moto_server


def test_resume_judges_only_stores_listed_in_full(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch)  # example-billing does not exist: its listing fails
        out = tmp_path / "run"
        action_id = _dangling(out / "ledger.jsonl", world.policy_path)
        world.retain("--apply", "--store", "billing", out=out)
        closing = [line for line in read_lines(out / "ledger.jsonl") if line["action_id"] == action_id and line["phase"] == "outcome"]
        assert closing == [], "absence in a listing that failed proves nothing"
        assert json.dumps(ledgers.dangling(out / "ledger.jsonl")).count(action_id) == 2  # still open (key and value)


def test_the_schedulers_and_the_lambdas_lock_bucket_reaches_retention(tmp_path: Path, monkeypatch) -> None:
    from vigil.cli.main import build_parser
    from vigil.scheduler.pipeline import JobOptions, stage_call

    args = build_parser().parse_args(["schedule", "--lock-bucket", "vigil-locks", "--apply"])
    _, options = stage_call("retain", JobOptions.from_args(args), tmp_path)
    assert options.lock_bucket == "vigil-locks" and options.apply
    monkeypatch.setenv("VIGIL_LOCK_BUCKET", "lambda-locks")
    assert load_deploy_module("lambda_handler").options_from_env("retain").lock_bucket == "lambda-locks"
