"""`vigil schedule` as a process: clean stop on SIGTERM/SIGINT, bad specs exit 2."""
from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from vigil.cli.main import main

ROOT = Path(__file__).resolve().parent.parent


def policy_with(tmp_path: Path, schedule: dict | None) -> Path:
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    if schedule is None:
        data.pop("schedule", None)
    else:
        data["schedule"] = schedule
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class Scheduler:
    """`vigil schedule` in a child process, its JSON events read line by line from stderr."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-m", "vigil", "schedule", *argv, "--log-format", "json"],
                                     cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.put(line)

    def wait_for(self, event: str, timeout: float = 30.0, **fields: str) -> dict:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no {event} event; saw: {''.join(self.seen)[-2000:]}") from None
            self.seen.append(line)
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if record.get("event") == event and all(record.get(k) == v for k, v in fields.items()):
                    return record

    def events(self) -> list[dict]:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        out = []
        for line in self.seen:
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", **extra)
    env.pop("VIGIL_SIGNING_KEY", None)
    return env


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_an_idle_scheduler_with_exit_0(tmp_path: Path, sig: signal.Signals) -> None:
    policy = policy_with(tmp_path, {"check": "every 1 minutes"})
    child = Scheduler(["--policy", str(policy), "--output", str(tmp_path / "evidence")], child_env())
    try:
        started = child.wait_for("scheduler.started")
        assert started["jobs"] == {"check": "every 1 minutes"} and "check" in started["next_runs"]
        child.proc.send_signal(sig)
        assert child.proc.wait(timeout=5) == 0
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    assert child.events()[-1]["event"] == "scheduler.stopped"


@pytest.fixture
def endpoint(moto_server: str) -> str:
    return moto_server


def test_sigterm_mid_run_finishes_the_stage_and_abandons_the_rest(tmp_path: Path, endpoint: str) -> None:
    policy = policy_with(tmp_path, {"check": "every 1 minutes"})
    out = tmp_path / "evidence"
    child = Scheduler(["--policy", str(policy), "--endpoint-url", endpoint, "--region", "us-east-1",
                       "--output", str(out), "--run-now"], child_env())
    try:
        child.wait_for("stage.started", stage="check")
        child.proc.send_signal(signal.SIGTERM)
        assert child.proc.wait(timeout=60) == 0
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    folders = [p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(folders) == 1 and "-check-" in folders[0].name  # one folder per run
    record = json.loads((folders[0] / "run.json").read_text())
    assert record["stages"][0]["stage"] == "check" and record["stages"][0]["exit_code"] in (0, 1)  # finished
    assert (folders[0] / "findings.json").is_file()
    assert all(s["status"] == "abandoned: stop requested" for s in record["stages"][1:])
    state = json.loads((out / ".vigil" / "schedule-state.json").read_text())
    assert "check" in state["last_run"] and state["running"] is None


def test_a_replica_holding_the_s3_lock_makes_this_scheduler_skip(tmp_path: Path, endpoint: str) -> None:
    from datetime import timedelta

    import boto3

    from vigil.locks import S3Lock

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="vigil-locks")
    other_replica = S3Lock(s3, "vigil-locks", "vigil/locks/check.lock", timedelta(hours=1))
    assert other_replica.acquire()
    out = tmp_path / "evidence"
    child = Scheduler(["--policy", str(policy_with(tmp_path, {"check": "every 1 minutes"})), "--endpoint-url", endpoint,
                       "--output", str(out), "--run-now", "--lock-bucket", "vigil-locks"], child_env())
    try:
        skipped = child.wait_for("job.skipped", job="check")
        child.proc.send_signal(signal.SIGTERM)
        assert child.proc.wait(timeout=5) == 0
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    assert "s3://vigil-locks/vigil/locks/check.lock" in skipped["reason"]
    assert [p.name for p in out.iterdir()] == [".vigil"]  # no run folder: the job did not run


def vigil(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


@pytest.mark.parametrize("phrase", ["every 0 minutes", "every day at 25:00", "whenever", "every funday at 01:00", 6])
def test_bad_schedule_spec_exits_2_naming_the_key(tmp_path: Path, phrase: object) -> None:
    policy = policy_with(tmp_path, {"check": "every 6 hours", "retain": phrase})
    code, err = vigil("schedule", "--policy", str(policy), "--output", str(tmp_path / "out"))
    assert code == 2
    assert "schedule.retain" in err and "policy.yaml:" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("schedule", [None, {}])
def test_nothing_to_schedule_exits_2(tmp_path: Path, schedule: dict | None) -> None:
    code, err = vigil("schedule", "--policy", str(policy_with(tmp_path, schedule)))
    assert code == 2 and "names no job" in err


@pytest.mark.parametrize("flags, message", [
    (["--as-of", "2027-01-01"], "real clock"),
    (["--upload", "bucket/prefix"], "s3://"),
    (["--lock-ttl-hours", "0"], "positive"),
])
def test_bad_flags_exit_2(tmp_path: Path, flags: list[str], message: str) -> None:
    code, err = vigil("schedule", "--policy", str(ROOT / "policy.yaml"), *flags)
    assert code == 2 and message in err


def test_an_unwritable_state_folder_is_an_environment_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the state folder should be")
    code, err = vigil("schedule", "--policy", str(ROOT / "policy.yaml"), "--state-file", str(blocker / "state.json"))
    assert code == 3 and "state" in err
