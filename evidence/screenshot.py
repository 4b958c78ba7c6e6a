"""Load a report in headless Chromium: the rendered DOM, the console log, a screenshot, a printed PDF.

Used by the browser test and to refresh docs/report.png:
`python -m vigil.evidence.screenshot [PACK_DIR] [--out FILE] [--overwrite] [--pdf FILE]` (without
PACK_DIR a sample pack is rendered in a temporary folder). An existing file, such as the
tracked docs/report.png, is replaced only with --overwrite. `--pdf` prints the report as a
reader would (A4, the page's print styles) and says how many pages it took.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.timestamps import compact_z

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


def print_pdf(html: Path, pdf: Path, browser: str, timeout: int = 90) -> Path:
    pdf.parent.mkdir(parents=True, exist_ok=True)
    done = _run(browser, [f"--print-to-pdf={pdf.resolve()}", "--no-pdf-header-footer"], html, timeout)
    if done.returncode != 0 or not pdf.is_file():
        raise RuntimeError(f"{browser} wrote no PDF ({done.returncode}): {done.stderr[-2000:]}")
    return pdf


def count_pages(pdf: Path) -> int:
    """Pages of a PDF Chromium wrote (its page objects are plain dictionaries, never compressed)."""
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf.read_bytes()))


def sample_pack(root: Path, policy: Path = ROOT / "policy.yaml") -> Path:
    """Four weekly runs beside each other (for the trend), the last one signed with a throwaway key."""
    policy_sha = hashlib.sha256(policy.read_bytes()).hexdigest() if policy.is_file() else None  # no policy.yaml once installed
    start = datetime(2026, 10, 12, 2, 0, tzinfo=UTC)
    directory = root
    for week in range(4):
        started = start + timedelta(days=7 * week)
        directory = sample.write_sample(root / compact_z(started), run_id=f"{compact_z(started)}-5eed0{week}",
                                        started=started, policy_sha256=policy_sha, failing=5 - week, with_retention=week == 3)
    keys.generate(root / "keys")
    write_report(directory, policy if policy.is_file() else None, root / "keys" / "signing.key")
    return directory


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vigil.evidence.screenshot", description=__doc__)
    parser.add_argument("pack", nargs="?", help="an evidence pack holding report.html (default: a sample pack)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "report.png"), help="where to write the PNG (default docs/report.png)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out (and --pdf) when it already exists")
    parser.add_argument("--pdf", metavar="FILE", help="also print the report to this PDF and say how many pages it has")
    args = parser.parse_args(argv)
    targets = [Path(args.out)] + ([Path(args.pdf)] if args.pdf else [])
    existing = [str(path) for path in targets if path.exists()]
    if existing and not args.overwrite:
        print(f"{', '.join(existing)} already exists; pass --overwrite to replace it, or --out elsewhere", file=sys.stderr)
        return 2
    browser = find_browser()
    if browser is None:
        print("no Chromium found (install it with 'make browser')", file=sys.stderr)
        return 3
    with tempfile.TemporaryDirectory(prefix="vigil-sample-") as scratch:
        pack = Path(args.pack) if args.pack else sample_pack(Path(scratch) / "packs")
        print(f"wrote {screenshot(pack / 'report.html', Path(args.out), browser)}")
        if args.pdf:
            pdf = print_pdf(pack / "report.html", Path(args.pdf), browser)
            print(f"wrote {pdf} ({count_pages(pdf)} pages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
