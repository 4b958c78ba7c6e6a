"""Load a report in headless Chromium: the rendered DOM, the console log, a screenshot.

Used by the browser test and to refresh docs/report.png:
`python -m vigil.evidence.screenshot [PACK_DIR] [--out docs/report.png]` (without PACK_DIR a
sample pack is rendered in a temporary folder).
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from . import keys, sample
from .render import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
ROOT = Path(__file__).resolve().parent.parent


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


@dataclass
class Loaded:
    dom: str
    console: list[str]  # console messages and CSP violations Chromium logged


def _run(browser: str, extra: list[str], html: Path, timeout: int, query: str = "") -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="vigil-chromium-") as profile:
        argv = [browser, *FLAGS, f"--user-data-dir={profile}", *extra, html.resolve().as_uri() + query]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def load(html: Path, browser: str, query: str = "", timeout: int = 90) -> Loaded:
    """The DOM after the page's script ran, and every console line (--enable-logging prints them)."""
    done = _run(browser, ["--enable-logging=stderr", "--v=0", "--dump-dom"], html, timeout, query)
    if done.returncode != 0:
        raise RuntimeError(f"{browser} failed ({done.returncode}): {done.stderr[-2000:]}")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return Loaded(done.stdout, console)


def screenshot(html: Path, png: Path, browser: str, width: int = 1280, height: int = 1800, timeout: int = 90) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    done = _run(browser, [f"--window-size={width},{height}", f"--screenshot={png.resolve()}"], html, timeout)
    if done.returncode != 0 or not png.is_file():
        raise RuntimeError(f"{browser} wrote no screenshot ({done.returncode}): {done.stderr[-2000:]}")
    return png


def sample_pack(root: Path, policy: Path = ROOT / "policy.yaml") -> Path:
    """Four weekly runs beside each other (for the trend), the last one signed with a throwaway key."""
    policy_sha = hashlib.sha256(policy.read_bytes()).hexdigest() if policy.is_file() else None  # no policy.yaml once installed
    start = datetime(2026, 10, 12, 2, 0, tzinfo=UTC)
    directory = root
    for week in range(4):
        started = start + timedelta(days=7 * week)
        directory = sample.write_sample(root / started.strftime("%Y%m%dT%H%M%SZ"), run_id=started.strftime("%Y%m%dT%H%M%SZ-5eed0") + str(week),
                                        started=started, policy_sha256=policy_sha, failing=5 - week, with_retention=week == 3)
    keys.generate(root / "keys")
    write_report(directory, policy if policy.is_file() else None, root / "keys" / "signing.key")
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vigil.evidence.screenshot", description=__doc__)
    parser.add_argument("pack", nargs="?", help="an evidence pack holding report.html (default: a sample pack)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "report.png"), help="where to write the PNG")
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("no Chromium found (install it with 'make browser')", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory(prefix="vigil-sample-") as scratch:
        pack = Path(args.pack) if args.pack else sample_pack(Path(scratch) / "packs")
        print(f"wrote {screenshot(pack / 'report.html', Path(args.out), browser)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
