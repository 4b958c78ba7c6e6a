"""The scheduler's timing, catch-up, locks and failure handling, on a fake clock (no sleeps)."""
from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
import schedule
from moto import mock_aws

from vigil.errors import UsageError
from vigil.locks import FileLock, Locks, S3Lock
from vigil.scheduler.health import health
from vigil.scheduler.logs import EventLog
from vigil.scheduler.phrases import Phrase, phrases_of
from vigil.scheduler.service import Service, StopFlag
from vigil.scheduler.state import State

MONDAY = datetime(2026, 11, 30, 0, 0)  # a Monday, midnight UTC
POLICY_SCHEDULE = {"check": "every 6 hours", "retain": "every day at 02:00", "report": "every monday at 06:00"}


class FakeClock:
    """Time moves only when the scheduler sleeps; past `until` the stop flag is raised."""

    def __init__(self, start: datetime, until: datetime | None = None):
        self.t, self.until = start, until

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float, stop: StopFlag) -> None:
        self.t += timedelta(seconds=seconds)
        if self.until is not None and self.t >= self.until:
            stop.requested = True


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fake clock that the `schedule` library reads too (it calls datetime.datetime.now())."""
    fake = FakeClock(MONDAY)

    class FakeDatetime(datetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return fake.t if tz is None else fake.t.replace(tzinfo=UTC).astimezone(tz)

    monkeypatch.setattr(schedule, "datetime", SimpleNamespace(datetime=FakeDatetime, timedelta=timedelta, time=time, date=date))
    return fake


class Recorder:
    """A job that records when it ran; `fail` lists the calls (1-based) that raise."""

    def __init__(self, clock: FakeClock, fail: tuple[int, ...] = ()):
        self.clock, self.fail, self.calls = clock, fail, []

    def __call__(self, kind: str) -> int:
        self.calls.append((kind, self.clock.now()))
        if len(self.calls) in self.fail:
            raise RuntimeError("the endpoint went away")
        return 0


def service(tmp_path: Path, clock: FakeClock, job, texts=POLICY_SCHEDULE, lock_dir: Path | None = None,
            log: io.StringIO | None = None, **kwargs) -> Service:
    phrases = {kind: Phrase.parse(text) for kind, text in texts.items()}
    return Service(phrases, job, State(tmp_path / "state.json"), Locks(lock_dir or tmp_path / "locks"),
                   EventLog("json", log or io.StringIO()), clock=clock, stop=kwargs.pop("stop", StopFlag()),
                   nap=kwargs.pop("nap", 3600.0))


def events(log: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in log.getvalue().splitlines()]


def test_policy_phrases_fire_at_the_right_utc_times(tmp_path: Path, clock: FakeClock) -> None:
    clock.until = MONDAY + timedelta(days=8, minutes=1)
    job = Recorder(clock)
    assert service(tmp_path, clock, job).serve() == 0
    runs = {kind: [t for k, t in job.calls if k == kind] for kind in POLICY_SCHEDULE}
    assert runs["check"] == [MONDAY + timedelta(hours=6 * n) for n in range(1, 33)]
    assert runs["retain"] == [MONDAY + timedelta(days=d, hours=2) for d in range(8)]
    assert runs["report"] == [MONDAY + timedelta(hours=6), MONDAY + timedelta(days=7, hours=6)]


def test_every_minute_runs_once_a_minute_and_stop_ends_the_loop(tmp_path: Path, clock: FakeClock) -> None:
    clock.until = MONDAY + timedelta(minutes=5, seconds=30)
    job = Recorder(clock)
    assert service(tmp_path, clock, job, {"check": "every 1 minutes"}, nap=30.0).serve() == 0
    assert [t for _, t in job.calls] == [MONDAY + timedelta(minutes=m) for m in range(1, 6)]
    assert State(tmp_path / "state.json").last_run("check") == MONDAY + timedelta(minutes=5)


def test_a_failing_job_is_logged_and_the_next_run_still_happens(tmp_path: Path, clock: FakeClock) -> None:
    clock.until = MONDAY + timedelta(hours=2, minutes=1)
    job, log = Recorder(clock, fail=(1,)), io.StringIO()
    assert service(tmp_path, clock, job, {"check": "every 1 hours"}, log=log).serve() == 0
    assert [t for _, t in job.calls] == [MONDAY + timedelta(hours=1), MONDAY + timedelta(hours=2)]
    crashed = [e for e in events(log) if e["event"] == "job.crashed"]
    assert len(crashed) == 1 and "RuntimeError" in crashed[0]["error"]
    assert events(log)[-1]["event"] == "scheduler.stopped"


def test_a_missed_run_is_caught_up_once_after_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    state = State(tmp_path / "state.json")
    state.finished("check", MONDAY - timedelta(hours=7), MONDAY - timedelta(hours=7))  # due at -1h: missed
    state.finished("retain", MONDAY - timedelta(hours=22), MONDAY - timedelta(hours=22))  # next due 02:00: not missed
    state.finished("report", MONDAY - timedelta(days=21), MONDAY - timedelta(days=21))  # missed three times
    job = Recorder(clock)
    assert sorted(service(tmp_path, clock, job).catch_up()) == ["check", "report"]
    assert sorted(job.calls) == [("check", MONDAY), ("report", MONDAY)]
    # Caught up now: a second restart at the same instant runs nothing.
    assert service(tmp_path, clock, Recorder(clock)).catch_up() == []


def test_first_start_has_nothing_to_catch_up(tmp_path: Path, clock: FakeClock) -> None:
    job = Recorder(clock)
    assert service(tmp_path, clock, job).catch_up() == [] and job.calls == []


def test_two_schedulers_one_lock_only_one_runs(tmp_path: Path, clock: FakeClock) -> None:
    locks, log_b = tmp_path / "shared-locks", io.StringIO()
    second_ran = Recorder(clock)
    other = service(tmp_path / "b", clock, second_ran, lock_dir=locks, log=log_b)
    seen_while_running = []

    def first_job(kind: str) -> int:
        seen_while_running.append(other.run_job(kind))  # the other scheduler tries while we run
        return 0

    first = service(tmp_path / "a", clock, first_job, lock_dir=locks)
    assert first.run_job("retain") == 0
    assert seen_while_running == [None] and second_ran.calls == []
    assert [e["event"] for e in events(log_b)] == ["job.skipped"]
    assert other.run_job("retain") == 0 and len(second_ran.calls) == 1  # free again once the first finished


def test_file_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    a, b = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert a.acquire() and not b.acquire()
    a.release()
    assert b.acquire()
    b.release()


@mock_aws
def test_s3_lock_lets_one_replica_in_and_takes_over_an_expired_one() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="vigil-locks")
    now = [datetime(2026, 11, 30, tzinfo=UTC)]
    one = S3Lock(s3, "vigil-locks", "locks/retain.lock", timedelta(hours=1), now=lambda: now[0])
    two = S3Lock(s3, "vigil-locks", "locks/retain.lock", timedelta(hours=1), now=lambda: now[0])
    assert one.acquire() and not two.acquire()
    one.release()
    assert two.acquire()
    now[0] += timedelta(hours=2)  # two died holding it; its lease ran out
    assert one.acquire()
    two.release()  # not two's any more: must not remove one's lock
    assert json.loads(s3.get_object(Bucket="vigil-locks", Key="locks/retain.lock")["Body"].read())["owner"] == one.owner


@mock_aws
def test_two_replicas_on_different_machines_one_runs(tmp_path: Path, clock: FakeClock) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="vigil-locks")

    def s3_lock(kind: str) -> S3Lock:
        return S3Lock(s3, "vigil-locks", f"vigil/locks/{kind}.lock", timedelta(hours=6))

    other_ran = Recorder(clock)
    other = service(tmp_path / "b", clock, other_ran)
    other.locks.s3_lock = s3_lock
    inner = []
    first = service(tmp_path / "a", clock, lambda kind: inner.append(other.run_job(kind)) or 0)
    first.locks.s3_lock = s3_lock
    assert first.run_job("retain") == 0 and inner == [None] and other_ran.calls == []
    assert "Contents" not in s3.list_objects_v2(Bucket="vigil-locks")  # released after the run


def test_stop_flag_second_signal_abandons_the_stage() -> None:
    stop = StopFlag()
    stop.request(15)
    assert stop.requested
    with pytest.raises(KeyboardInterrupt):
        stop.request(15)


def test_a_stop_before_a_due_job_runs_nothing(tmp_path: Path, clock: FakeClock) -> None:
    stop = StopFlag()
    stop.request()
    job = Recorder(clock)
    assert service(tmp_path, clock, job, stop=stop).run_job("check") is None and job.calls == []


@pytest.mark.parametrize("text, due_after_monday_0030", [
    ("every 6 hours", MONDAY + timedelta(hours=6, minutes=30)),
    ("every 1 minutes", MONDAY + timedelta(minutes=31)),
    ("every day at 02:00", MONDAY + timedelta(hours=2)),
    ("every day at 00:15", MONDAY + timedelta(days=1, minutes=15)),
    ("every monday at 06:00", MONDAY + timedelta(hours=6)),
    ("every sunday at 23:59", MONDAY + timedelta(days=6, hours=23, minutes=59)),
])
def test_next_due(text: str, due_after_monday_0030: datetime) -> None:
    assert Phrase.parse(text).next_due(MONDAY + timedelta(minutes=30)) == due_after_monday_0030


def test_eventbridge_expressions() -> None:
    assert Phrase.parse("every 6 hours").eventbridge() == "rate(6 hours)"
    assert Phrase.parse("every 1 minutes").eventbridge() == "rate(1 minute)"
    assert Phrase.parse("every day at 02:00").eventbridge() == "cron(0 2 * * ? *)"
    assert Phrase.parse("every monday at 06:30").eventbridge() == "cron(30 6 ? * MON *)"


@pytest.mark.parametrize("text", ["every 0 minutes", "every day at 24:00", "sometimes", "every funday at 01:00", ""])
def test_bad_phrases_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="schedule phrase"):
        Phrase.parse(text)


def test_an_empty_schedule_section_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="names no job"):
        phrases_of(SimpleNamespace(check=None, retain=None, report=None))


def test_health_reads_heartbeat_and_running_job(tmp_path: Path) -> None:
    state = State(tmp_path / "state.json")
    now = MONDAY
    assert health(state, now, timedelta(minutes=5), timedelta(hours=6))[0] is False
    state.beat(now - timedelta(minutes=1))
    assert health(State(state.path), now, timedelta(minutes=5), timedelta(hours=6))[0] is True
    assert health(State(state.path), now + timedelta(minutes=10), timedelta(minutes=5), timedelta(hours=6))[0] is False
    state.started("check", now)  # a long check does not beat, and is still healthy
    assert health(State(state.path), now + timedelta(hours=2), timedelta(minutes=5), timedelta(hours=6)) == (
        True, "running check since 2026-11-30T00:00:00Z")


@mock_aws
def test_a_broken_lock_store_is_a_failed_run_not_a_dead_scheduler(tmp_path: Path, clock: FakeClock) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")  # no bucket: every lock attempt fails
    clock.until = MONDAY + timedelta(hours=2, minutes=1)
    job, log = Recorder(clock), io.StringIO()
    svc = service(tmp_path, clock, job, {"check": "every 1 hours"}, log=log)
    svc.locks.s3_lock = lambda kind: S3Lock(s3, "missing-bucket", f"{kind}.lock", timedelta(hours=1))
    assert svc.serve() == 0
    assert job.calls == []
    assert [e["event"] for e in events(log)].count("job.crashed") == 2  # both hourly runs tried, logged, survived
    assert FileLock(tmp_path / "locks" / "vigil-check.lock").acquire()  # and the file lock was released
