"""The check every path that can change data makes first: `--as-of` is a preview.

Judged at a future instant, retention would delete data still inside its retention and
ignore holds, Object Lock and keep_at_least that are still in force. So with `--apply` an
as-of later than now (plus CLOCK_SKEW for clocks that disagree) is bad input: exit 2, and
nothing changes. A past as-of stays allowed: every rule judged earlier deletes less.
`vigil retain`, `vigil run`, the scheduler, the Lambda and `vigil subject erase/process` all
come through `refuse_future_as_of` (the engines call it too, so no caller can skip it).
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from vigil.errors import UsageError
from vigil.timestamps import iso_z

CLOCK_SKEW = timedelta(minutes=5)
JUDGED_AT = "holds, Object Lock and keep_at_least are judged at the as-of instant"


def is_future(as_of: datetime, now: datetime | None = None) -> bool:
    return as_of > (now or datetime.now(UTC)) + CLOCK_SKEW


def refuse_future_as_of(as_of: datetime | None, apply: bool, now: datetime | None = None) -> None:
    """Raise UsageError (exit 2) for `--apply` with an as-of in the future; otherwise nothing."""
    if apply and as_of is not None and is_future(as_of, now):
        stamp = iso_z(as_of)
        raise UsageError(f"--as-of {stamp} is in the future: --as-of previews retention (a dry run) and cannot be "
                         f"combined with --apply, which would delete data still inside its retention; nothing was changed")
