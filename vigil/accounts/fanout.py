"""A pool over accounts around each account's own pool, with the calls in flight bounded in all.

Each account has its own session and clients, so botocore's adaptive retry (and its
client-side rate limiter) backs off per account: one throttled account slows only itself.
The per-account pool shrinks as more accounts run at once, so the calls in flight across
the run stay near `TOTAL_CALLS` whatever --accounts-parallel says.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
T = TypeVar("T")
TOTAL_CALLS = 64  # AWS calls in flight across all accounts at once
MIN_PER_ACCOUNT = 4


def per_account_workers(parallel: int, accounts: int, total: int = TOTAL_CALLS) -> int:
    """Each account's pool size when `parallel` of `accounts` run at once."""
    return max(MIN_PER_ACCOUNT, total // max(1, min(parallel, accounts)))


def for_each(items: Sequence[Item], parallel: int, work: Callable[[Item], T]) -> list[T]:
    """`work(item)` for every account's item, `parallel` at a time; results in the items' order.
    `work` turns an account's own failures into its result; anything it raises ends the run."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(items))), thread_name_prefix="vigil-account") as pool:
        return list(pool.map(work, items))
