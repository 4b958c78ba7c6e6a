"""When does one thing (object version, record, item) expire, and may it be touched? Pure."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import NamedTuple

from vigil.policy import Duration, Policy
from vigil.policy.models import Category, Hold

KEEP, EXPIRED, HELD, ERROR = "keep", "expired", "held", "error"


class Decision(NamedTuple):  # one per version or record decided: a NamedTuple is cheaper to build than a frozen dataclass
    verdict: str  # keep | expired | held | error
    reason: str = ""
    until: date | None = None  # held: the date it becomes deletable (None: not known / indefinite)
    start: datetime | None = None  # when its retention clock started


@dataclass(frozen=True)
class Rules:
    """Everything a decision needs, fixed for one store and one run."""

    store: str
    category: Category
    holds: tuple[Hold, ...]
    as_of: datetime
    closed: dict[str, datetime]
    grace: Duration | None = None  # verify: how late a deletion may be

    @classmethod
    def for_store(cls, policy: Policy, store_name: str, category: Category, as_of: datetime,
                  closed: dict[str, datetime], grace: Duration | None = None) -> Rules:
        holds = tuple(h for h in policy.holds if not h.stores or store_name in h.stores)
        return cls(store_name, category, holds, as_of, closed, grace)

    def decide(self, created: datetime | None, subject: str | None = None, key: str | None = None,
               lock_mode: str | None = None, lock_until: datetime | None = None, legal_hold: bool = False) -> Decision:
        category = self.category
        if category.retain.forever:
            return Decision(KEEP, "retained forever")
        if category.after == "account_closed":
            if subject is None:
                return Decision(ERROR, "cannot tell whose data this is (no subject)")
            start = self.closed.get(subject)
            if start is None:
                return Decision(KEEP, "account open")
        else:
            if created is None:
                return Decision(ERROR, "no timestamp to age it by")
            start = created
        if not self._past_deadline(start):
            return Decision(KEEP, "within retention", start=start)
        held = self.held(created, subject, key, lock_mode, lock_until, legal_hold)
        if held is not None:
            return Decision(HELD, held[0], held[1], start)
        return Decision(EXPIRED, self._expired_reason, start=start)

    @cached_property
    def _expired_reason(self) -> str:  # formatted once per run, not once per expired version
        return f"older than {self.category.retain}" + (" after account closed" if self.category.after else "")

    @cached_property
    def _today(self) -> date:
        return self.as_of.astimezone(UTC).date()

    @cached_property
    def _cutoff_window(self) -> tuple[datetime, datetime]:
        """Starts before the first bound are surely past their deadline, after the second surely not.

        Calendar arithmetic (month ends clamp, leap days) moves a deadline by at most a few days,
        so only starts inside this window need the exact computation; this keeps the per-record
        cost of a million-record object to one comparison.
        """
        end = self.grace.before(self.as_of) if self.grace is not None else self.as_of
        cut = self.category.retain.before(end)
        return cut - timedelta(days=4), cut + timedelta(days=4)

    def _past_deadline(self, start: datetime) -> bool:
        low, high = self._cutoff_window
        if start < low:
            return True
        if start > high:
            return False
        deadline = self.category.retain.after(start)
        if self.grace is not None:
            deadline = self.grace.after(deadline)
        return deadline <= self.as_of

    def held(self, created: datetime | None, subject: str | None, key: str | None, lock_mode: str | None,
             lock_until: datetime | None, legal_hold: bool) -> tuple[str, date | None] | None:
        today = self._today
        for hold in self.holds:
            if hold.until is not None and hold.until < today:
                continue
            if (subject is not None and subject in hold.subjects) or (key is not None and any(key.startswith(p) for p in hold.prefixes)):
                return f"legal hold: {hold.reason}", hold.until
        if legal_hold:
            return "S3 Object Lock legal hold", None
        if lock_mode and lock_until is not None and lock_until > self.as_of:
            return f"S3 Object Lock {lock_mode} retention", lock_until.date()
        minimum = self.category.keep_at_least
        if minimum is not None and created is not None and minimum.after(created) > self.as_of:
            return f"keep_at_least {minimum}", minimum.after(created).date()
        return None
