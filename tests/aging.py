"""Data written in the past: moto stamps LastModified with its own clock, so tests age objects by
turning that clock back while they write (in process: `mock_aws` or the loopback server's thread).

`--as-of` in the future cannot stand in for age any more: with --apply it is refused (issue 13).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import moto.s3.models as s3_models

YEAR = timedelta(days=366)


@contextmanager
def written_ago(age: timedelta) -> Iterator[None]:
    """Objects and delete markers written inside this block are `age` old (moto's clock only)."""
    real = s3_models.utcnow
    s3_models.utcnow = lambda: real() - age
    try:
        yield
    finally:
        s3_models.utcnow = real
