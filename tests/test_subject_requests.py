"""Requests: recorded with a deadline (policy `requests:`), listed with days left, erase requests
processed by `vigil run --apply`, counted in the evidence report without personal data."""
from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from moto import mock_aws

from tests.test_retention_world import NOW, iso
from tests.test_subject_world import SubjectWorld
from vigil.cli.main import main
from vigil.cli.schedule import scheduled_job
from vigil.policy import PolicyError, load_policy
from vigil.scheduler.logs import EventLog
from vigil.scheduler.pipeline import JobOptions
from vigil.scheduler.service import StopFlag


def test_requests_added_listed_and_processed_by_vigil_run(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=20)
        old = iso(NOW - timedelta(days=40))
        assert world.subject("request", "add", "alice", "--kind", "erase") == 0
        capsys.readouterr()
        assert world.subject("request", "add", "bob", "--kind", "access", "--received", old) == 0
        bob = capsys.readouterr().out.split(":")[0]
        assert bob.startswith("req-")
        assert world.subject("request", "add", "dave", "--kind", "erase", "--received", iso(NOW + timedelta(days=1))) == 0
        with pytest.raises(SystemExit) as usage:
            world.subject("request", "add", "x", "--kind", "rectify")
        assert usage.value.code == 2
        capsys.readouterr()
        assert world.subject("requests") == 0
        listing = capsys.readouterr().out
        assert "alice" in listing and "overdue" in listing and " 30 " in listing  # bob's is 10 days late; alice has 30 left

        out = tmp_path / "run"
        code = main(["run", "--policy", str(world.policy_path), "--apply", "--output", str(out), "--region", "us-east-1"])
        record = json.loads((out / "run.json").read_text())
        stage = next(s for s in record["stages"] if s["stage"] == "requests")
        assert stage["exit_code"] == 0, record
        assert code == max(s["exit_code"] for s in record["stages"] if s["exit_code"] is not None)
        assert not any(v["key"] == "contacts/alice.json" for v in world.estate()["example-contacts"]), "the due erase request ran"
        assert any(v["key"] == "contacts/bob.json" for v in world.estate()["example-contacts"]), "access requests erase nothing"
        counts = json.loads((out / "subject-requests.json").read_text())
        assert {k: counts[k] for k in ("received", "completed", "on_time", "open", "overdue")} == \
            {"received": 3, "completed": 1, "on_time": 1, "open": 2, "overdue": 1}
        report = (out / "report.md").read_text()
        section = report[report.index("## Subject requests"):report.index("## Policy in force")]
        assert "| 3 | 1 | 2 | 1 | 1 | 0 | 2 | 1 |" in section
        for name in ("alice", "bob", "dave", "req-"):
            assert name not in section and name not in (out / "subject-requests.json").read_text()
        assert "Subject requests" in (out / "report.html").read_text()
        assert "alice" not in (out / "ledger.jsonl").read_text()

        capsys.readouterr()
        assert world.subject("requests", "--all") == 0
        assert "done" in capsys.readouterr().out
        assert world.subject("request", "done", bob) == 0
        assert "(late)" in capsys.readouterr().out
        assert world.subject("request", "done", "req-nope") == 2


def _load_error(tmp_path: Path, requests: dict) -> tuple[str, Path]:
    data = yaml.safe_load((Path(__file__).resolve().parent.parent / "policy.yaml").read_text())
    data["requests"] = requests
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(PolicyError) as error:
        load_policy(path)
    return str(error.value), path


def _line(path: Path, key: str) -> int:
    """The line of `key` inside the file's requests: section."""
    lines = path.read_text().splitlines()
    start = next(i for i, text in enumerate(lines) if text.startswith("requests:"))
    return next(i for i, text in enumerate(lines[start:], start + 1) if text.strip().startswith(key + ":"))


def test_requests_section_is_validated(tmp_path: Path) -> None:
    message, path = _load_error(tmp_path, {"deadline": "P0D", "table": "requests-log"})
    assert message.startswith(f"{path}:{_line(path, 'deadline')}: requests.deadline: 'P0D' is not a deadline")
    message, path = _load_error(tmp_path, {"deadline": "P30D", "table": "x"})
    assert message.startswith(f"{path}:{_line(path, 'table')}: requests.table:")
    message, path = _load_error(tmp_path, {"deadlines": "P30D"})
    assert message == f"{path}:{_line(path, 'deadlines')}: requests.deadlines: unknown key"
    data = yaml.safe_load(path.read_text())
    data["requests"] = {}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    policy = load_policy(path)
    assert policy.requests.table == "vigil-requests" and policy.requests.deadline.days == 30


def test_missing_request_table_is_an_environment_failure(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        assert world.subject("request", "add", "alice", "--kind", "erase") == 3
        assert "request log table 'vigil-requests' does not exist" in capsys.readouterr().err


def test_the_scheduler_answers_erase_requests_in_the_retain_job_only_when_applying(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=5)
        assert world.subject("request", "add", "alice", "--kind", "erase") == 0
        options = JobOptions(policy=str(world.policy_path), regions=("us-east-1",), apply=True)
        job = scheduled_job(options, tmp_path / "evidence", EventLog("json", io.StringIO()), StopFlag(), None)

        job("report")  # never applies: the request is counted, nothing is erased
        (report,) = (tmp_path / "evidence").iterdir()
        assert json.loads((report / "subject-requests.json").read_text())["open"] == 1
        assert any(v["key"] == "contacts/alice.json" for v in world.estate()["example-contacts"])

        job("retain")
        (retain,) = [p for p in (tmp_path / "evidence").iterdir() if "-retain-" in p.name]
        stage = next(s for s in json.loads((retain / "run.json").read_text())["stages"] if s["stage"] == "requests")
        assert stage["exit_code"] == 0
        assert not any(v["key"] == "contacts/alice.json" for v in world.estate()["example-contacts"]), "the due request was erased"
        counts = json.loads((retain / "subject-requests.json").read_text())
        assert (counts["completed"], counts["open"]) == (1, 0)
