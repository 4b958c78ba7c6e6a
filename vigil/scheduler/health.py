"""Is the scheduler alive? `python -m vigil.scheduler.health STATE_FILE` exits 0 if so (HEALTHCHECK).

Alive: the loop wrote its heartbeat recently, or a job started not too long ago is running
(a long check does not beat, and must not get its container killed).
"""
from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.scheduler.state import State
from vigil.timestamps import iso_z


def health(state: State, now: datetime, max_idle: timedelta, max_run: timedelta) -> tuple[bool, str]:
    running = state.running()
    if running is not None and now - running[1] <= max_run:
        return True, f"running {running[0]} since {iso_z(running[1])}"
    beat = state.heartbeat()
    if beat is None:
        return False, f"no heartbeat in {state.path}"
    if now - beat > max_idle:
        return False, f"last heartbeat {iso_z(beat)} is older than {int(max_idle.total_seconds())}s"
    return True, f"heartbeat {iso_z(beat)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vigil.scheduler.health", description=__doc__)
    parser.add_argument("state_file", type=Path)
    parser.add_argument("--max-idle-seconds", type=float, default=300.0)
    parser.add_argument("--max-run-hours", type=float, default=6.0)
    args = parser.parse_args(argv)
    ok, why = health(State(args.state_file), datetime.now(UTC).replace(tzinfo=None),
                     timedelta(seconds=args.max_idle_seconds), timedelta(hours=args.max_run_hours))
    print(("healthy: " if ok else "unhealthy: ") + why)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
