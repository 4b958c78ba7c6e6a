"""The cut-off window in Rules.decide agrees with exact calendar arithmetic for every start."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from vigil.retention.decide import EXPIRED, KEEP, Rules

from vigil.policy import Duration
from vigil.policy.models import Category

DURATIONS = ["P90D", "P18M", "P1M", "P2Y", "P7Y", "P1Y2M3D", "PT12H"]
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC))


@settings(max_examples=400, deadline=None)
@given(retain=st.sampled_from(DURATIONS), grace=st.sampled_from([None, "P7D", "P1M"]), as_of=moments,
       offset_hours=st.integers(min_value=-24 * 40, max_value=24 * 40))
def test_fast_window_matches_exact_deadline(retain: str, grace: str | None, as_of: datetime, offset_hours: int) -> None:
    rules = Rules("s", Category(retain=Duration.parse(retain), action="delete"), (), as_of, {},
                  Duration.parse(grace) if grace else None)
    # starts around the cut-off, where month-end clamping matters most
    cut = rules.category.retain.before(rules.grace.before(as_of) if rules.grace else as_of)
    start = cut + timedelta(hours=offset_hours)
    deadline = rules.category.retain.after(start)
    if rules.grace is not None:
        deadline = rules.grace.after(deadline)
    expected = EXPIRED if deadline <= as_of else KEEP
    assert rules.decide(start).verdict == expected
