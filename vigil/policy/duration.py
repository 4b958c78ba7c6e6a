"""ISO 8601 durations as the policy file writes them (P90D, P18M, P2Y, PT12H, forever)."""
from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_PATTERN = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


@dataclass(frozen=True)
class Duration:
    """A calendar duration. `forever` stands for a category that is never deleted."""

    text: str
    years: int = 0
    months: int = 0
    days: int = 0  # weeks are folded into days
    seconds: int = 0
    forever: bool = False

    @classmethod
    def parse(cls, text: str | Duration) -> Duration:
        if isinstance(text, Duration):  # models built in code may pass a parsed value
            return text
        if not isinstance(text, str):
            raise ValueError(f"{text!r} is not an ISO 8601 duration (write it as a string, e.g. 'P90D')")
        if text == "forever":
            return cls(text=text, forever=True)
        match = _PATTERN.match(text)
        if not match:
            raise ValueError(f"'{text}' is not an ISO 8601 duration (e.g. P90D, P18M, P2Y, PT12H, or 'forever')")
        part = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
        return cls(
            text=text,
            years=part["years"],
            months=part["months"],
            days=part["weeks"] * 7 + part["days"],
            seconds=part["hours"] * 3600 + part["minutes"] * 60 + part["seconds"],
        )

    def approx_days(self) -> int:
        """Whole days as lifecycle rules count them: a year is 365 days, a month 30 (rounded up)."""
        if self.forever:
            raise ValueError("'forever' has no length in days")
        return self.years * 365 + self.months * 30 + self.days + math.ceil(self.seconds / 86400)

    def sort_key(self) -> float:
        return math.inf if self.forever else self.years * 365.25 + self.months * 30.44 + self.days + self.seconds / 86400

    def after(self, start: datetime) -> datetime:
        """`start` plus this duration on the calendar (month ends clamp: Jan 31 + P1M = Feb 28/29)."""
        if self.forever:
            return datetime.max.replace(tzinfo=start.tzinfo)
        month_index = start.month - 1 + self.months + 12 * self.years
        year, month = start.year + month_index // 12, month_index % 12 + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        return start.replace(year=year, month=month, day=day) + timedelta(days=self.days, seconds=self.seconds)

    def before(self, end: datetime) -> datetime:
        """`end` minus this duration on the calendar (the inverse of `after` for cut-off dates)."""
        if self.forever:
            return datetime.min.replace(tzinfo=end.tzinfo)
        month_index = end.month - 1 - self.months - 12 * self.years
        year, month = end.year + month_index // 12, month_index % 12 + 1
        day = min(end.day, calendar.monthrange(year, month)[1])
        return end.replace(year=year, month=month, day=day) - timedelta(days=self.days, seconds=self.seconds)

    def __str__(self) -> str:
        return self.text
