"""`vigil schedule`'s loop: run each job on its phrase, one at a time, until told to stop.

Jobs run in the main thread, one after another, so the process never runs two jobs at
once; the locks (lock.py) extend that to other schedulers. A failing job is logged and the
loop goes on. SIGTERM/SIGINT set a flag: the current stage finishes, the rest of that run
is abandoned, and the loop ends (a second signal abandons the current stage too).
"""
from __future__ import annotations

import functools
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Protocol

import schedule

from vigil.locks import Locks
from vigil.scheduler.logs import EventLog
from vigil.scheduler.phrases import Phrase
from vigil.scheduler.state import State
from vigil.timestamps import iso_z

MAX_NAP = 30.0  # seconds between heartbeats while idle


class StopFlag:
    def __init__(self) -> None:
        self.requested = False
        self.signals = 0

    def request(self, signum: int | None = None, frame: FrameType | None = None) -> None:
        self.signals += 1
        if self.requested and signum is not None:
            raise KeyboardInterrupt  # second signal: abandon the current stage now
        self.requested = True

    def install(self) -> Callable[[], None]:
        """Route SIGTERM and SIGINT here; returns a function that puts the old handlers back."""
        previous = {sig: signal.signal(sig, self.request) for sig in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

        return restore


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float, stop: StopFlag) -> None: ...


class SystemClock:
    """Naive UTC, the same time the `schedule` library reads once the process runs in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)

    def sleep(self, seconds: float, stop: StopFlag) -> None:
        end = time.monotonic() + seconds
        while not stop.requested and (left := end - time.monotonic()) > 0:
            time.sleep(min(1.0, left))  # wake at least once a second to notice a stop


Job = Callable[[str], int]  # job kind -> exit code


class Service:
    def __init__(self, phrases: dict[str, Phrase], job: Job, state: State, locks: Locks, log: EventLog,
                 clock: Clock | None = None, stop: StopFlag | None = None, nap: float = MAX_NAP):
        self.nap = nap
        self.phrases, self.job, self.state, self.locks, self.log = phrases, job, state, locks, log
        self.clock = clock or SystemClock()
        self.stop = stop or StopFlag()
        self.scheduler = schedule.Scheduler()
        for kind, phrase in phrases.items():
            phrase.register(self.scheduler, functools.partial(self.run_job, kind))

    def run_job(self, kind: str) -> int | None:
        """Run one job now unless stopping or locked; never raises (a failing job is logged)."""
        if self.stop.requested:
            return None
        try:
            with self.locks.hold(kind) as busy:
                if busy:
                    self.log.event("job.skipped", level="warning", job=kind, reason=busy)
                    return None
                return self._run_locked(kind)
        except Exception as exc:  # a lock or the state file failed (disk full, S3 down): try again next time
            self.log.event("job.crashed", level="error", job=kind, error=f"{type(exc).__name__}: {exc}"[:300])
            return 1

    def _run_locked(self, kind: str) -> int | None:
        started = self.clock.now()
        self.state.started(kind, started)
        code: int | None = None
        try:
            code = self.job(kind)
        except KeyboardInterrupt:
            self.log.event("job.abandoned", level="warning", job=kind)
            self.stop.requested = True
        except Exception as exc:  # the scheduler outlives any one job
            self.log.event("job.crashed", level="error", job=kind, error=f"{type(exc).__name__}: {exc}"[:300])
            code = 1
        finally:
            self.state.finished(kind, started, self.clock.now())
        return code

    def catch_up(self) -> list[str]:
        """Run once each job whose due time passed while no scheduler ran (not once per miss)."""
        missed = []
        for kind, phrase in self.phrases.items():
            last = self.state.last_run(kind)
            if last is not None and phrase.next_due(last) <= self.clock.now():
                missed.append(kind)
        for kind in missed:
            self.log.event("job.catch_up", job=kind, last_run=str(self.state.last_run(kind)))
            self.run_job(kind)
        return missed

    def serve(self, run_now: bool = False) -> int:
        """The loop; returns 0 when stopped."""
        self.state.clear_running()  # left by a scheduler that was killed mid-run; nothing runs yet
        self.log.event("scheduler.started", jobs={kind: p.text for kind, p in self.phrases.items()}, next_runs=self.next_runs())
        try:
            if run_now:
                for kind in self.phrases:
                    self.run_job(kind)
            else:
                self.catch_up()
            while not self.stop.requested:
                self.scheduler.run_pending()
                self.state.beat(self.clock.now())
                idle = self.scheduler.idle_seconds
                if not self.stop.requested:
                    self.clock.sleep(min(self.nap, max(0.0, idle if idle is not None else self.nap)), self.stop)
        except KeyboardInterrupt:  # a second signal outside a stage
            self.log.event("scheduler.interrupted", level="warning")
        self.log.event("scheduler.stopped", signals=self.stop.signals)
        return 0

    def next_runs(self) -> dict[str, str]:
        return {kind: iso_z(job.next_run) for kind, job in zip(self.phrases, self.scheduler.jobs, strict=True)
                if job.next_run is not None}
