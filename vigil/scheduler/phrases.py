"""Schedule phrases from the policy ("every 6 hours", "every day at 02:00", "every monday at 06:00").

One parse, several readers: the `schedule` library (the live loop), `next_due` (catch-up
after a restart) and EventBridge expressions (the Lambda recipe). All times are UTC.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import schedule

from vigil.errors import UsageError
from vigil.policy.models import _SCHEDULE  # the one regex the policy file is validated with

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
JOB_KINDS = ("check", "retain", "report")


@dataclass(frozen=True)
class Phrase:
    text: str
    every: int = 0  # interval phrases: how many units
    unit: str = ""  # "minutes" | "hours" | "days"
    day: str = ""  # at-phrases: "day" or a weekday
    at: time | None = None

    @classmethod
    def parse(cls, text: str) -> Phrase:
        match = _SCHEDULE.match(str(text).strip().lower())
        if not match:
            raise UsageError(
                f"schedule {text!r} is not a schedule phrase "
                "('every N minutes|hours|days', 'every day at HH:MM', 'every <weekday> at HH:MM')"
            )
        if match["unit"]:
            unit = match["unit"] if match["unit"].endswith("s") else match["unit"] + "s"
            return cls(text=text, every=int(match["n"] or 1), unit=unit)
        return cls(text=text, day=match["when"], at=time(int(match["hh"]), int(match["mm"])))

    def register(self, scheduler: schedule.Scheduler, fn: Callable[[], object]) -> schedule.Job:
        """Add this phrase to a `schedule` scheduler (whose clock the process keeps in UTC)."""
        if self.unit:
            return getattr(scheduler.every(self.every), self.unit).do(fn)
        assert self.at is not None
        return getattr(scheduler.every(), self.day).at(self.at.strftime("%H:%M")).do(fn)

    def next_due(self, after: datetime) -> datetime:
        """The first instant strictly after `after` at which this phrase is due."""
        if self.unit:
            return after + timedelta(**{self.unit: self.every})
        assert self.at is not None
        candidate = after.replace(hour=self.at.hour, minute=self.at.minute, second=0, microsecond=0)
        while candidate <= after or (self.day != "day" and WEEKDAYS[candidate.weekday()] != self.day):
            candidate += timedelta(days=1)
        return candidate

    def eventbridge(self) -> str:
        """The same schedule as an EventBridge expression (rate() or cron(), UTC)."""
        if self.unit:
            unit = self.unit[:-1] if self.every == 1 else self.unit
            return f"rate({self.every} {unit})"
        assert self.at is not None
        weekday = "?" if self.day == "day" else self.day[:3].upper()
        month_day = "*" if self.day == "day" else "?"
        return f"cron({self.at.minute} {self.at.hour} {month_day} * {weekday} *)"


def phrases_of(schedule_section: object) -> dict[str, Phrase]:
    """The jobs the policy's `schedule:` section names, parsed; exit 2 when it names none."""
    found = {kind: Phrase.parse(text) for kind in JOB_KINDS if (text := getattr(schedule_section, kind, None))}
    if not found:
        raise UsageError("the policy's schedule: section names no job (check, retain or report); nothing to schedule")
    return found
