"""Benchmark: `vigil anonymize` (the repository policy's usage_logs, k = 5) against a bare stdlib
json.loads + json.dumps loop over the same JSONL file, in CPU time (records per CPU-second),
in the same run. Realistic web logs: user agents of 110-130 characters, Zipf-distributed IPs
(about 8% IPv6), time-ordered.

    .venv/bin/python bench/anonymize_bench.py --records 1000000 --rounds 3 [--profile]

The machine is shared, so both are timed with time.process_time (this process's CPU), and
each round runs both, alternating which goes first. Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import base64
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT  # noqa: E402
from vigil.stages.anonymize import AnonymizeOptions, anonymize  # noqa: E402

BROWSERS = ["Chrome/{v}.0.{b}.{p} Safari/537.36", "Firefox/{v}.0", "Version/17.{p} Mobile/15E148 Safari/604.1",
            "Edg/{v}.0.{b}.{p}"]
SYSTEMS = ["Windows NT 10.0; Win64; x64", "Macintosh; Intel Mac OS X 10_15_7", "X11; Linux x86_64",
           "iPhone; CPU iPhone OS 17_4 like Mac OS X", "Linux; Android 14; Pixel 8"]
PATHS = ["/", "/login", "/account", "/plans", "/support/article/{n}", "/search?q=item{n}", "/static/app.{n}.js"]


def user_agent(rng: random.Random) -> str:
    """110-130 characters, as real browser strings are."""
    base = (f"Mozilla/5.0 ({rng.choice(SYSTEMS)}) AppleWebKit/537.36 (KHTML, like Gecko) "
            + rng.choice(BROWSERS).format(v=rng.randint(100, 125), b=rng.randint(1000, 6999), p=rng.randint(10, 199)))
    target = rng.randint(110, 130)
    return (base + " " + "x" * max(0, target - len(base) - 1))[:target] if len(base) < target else base[:target]


def web_logs(n: int, seed: int = 7) -> bytes:
    """Zipf over networks (a few busy, a long tail), ~8% IPv6, ~30 requests per second, in time order."""
    rng = random.Random(seed)
    networks = 2_000
    weights = [1 / (rank ** 1.1) for rank in range(1, networks + 1)]
    picks = rng.choices(range(networks), weights, k=n)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    out = []
    for i, net in enumerate(picks):
        if net % 12 == 11:  # ~8% of traffic from IPv6 networks
            ip = f"2001:db8:{net:x}:{rng.randint(0, 65535):x}::{rng.randint(1, 65535):x}"
        else:
            ip = f"{10 + net // 65536 % 200}.{net // 256 % 256}.{net % 256}.{rng.randint(1, 254)}"
        record = {"ts": (start + timedelta(seconds=i / 30)).strftime("%Y-%m-%dT%H:%M:%SZ"), "ip": ip,
                  "method": "GET", "path": rng.choice(PATHS).format(n=rng.randint(1, 500)), "status": rng.choice((200, 200, 200, 304, 404)),
                  "bytes": rng.randint(200, 90_000), "user_agent": user_agent(rng), "account_id": f"acct-{rng.randint(1, 50_000)}",
                  "email": f"user{rng.randint(1, 50_000)}@example.com", "referrer": "https://www.example.com/"}
        out.append(json.dumps(record))
    return ("\n".join(out) + "\n").encode()


def bare_loop(source: Path, target: Path) -> int:
    n = 0
    with open(source, "rb") as inp, open(target, "w") as out:
        for line in inp:
            out.write(json.dumps(json.loads(line)) + "\n")
            n += 1
    return n


def cpu(fn) -> tuple[float, object]:
    start = time.process_time()
    result = fn()
    return time.process_time() - start, result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="profile one vigil pass (cProfile) and print the top 25")
    args = parser.parse_args()
    os.environ.setdefault("VIGIL_PSEUDONYM_KEY", base64.b64encode(b"b" * 32).decode())
    work = Path(tempfile.mkdtemp(prefix="vigil-anon-bench-"))
    source = work / "web.jsonl"
    source.write_bytes(web_logs(args.records))
    options = AnonymizeOptions("usage_logs", ROOT / "policy.yaml", input=str(source), output=str(work / "vigil.jsonl"))
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(anonymize, options)
        pstats.Stats(profile).sort_stats("tottime").print_stats(25)
    vigil_times, bare_times = [], []
    counts = None
    for round_ in range(args.rounds):
        order = ("vigil", "bare") if round_ % 2 == 0 else ("bare", "vigil")
        for which in order:
            if which == "vigil":
                seconds, outcome = cpu(lambda: anonymize(options))
                vigil_times.append(seconds)
                counts = outcome.counts  # type: ignore[attr-defined]
            else:
                seconds, _ = cpu(lambda: bare_loop(source, work / "bare.jsonl"))
                bare_times.append(seconds)
        print(f"round {round_ + 1}: vigil {vigil_times[-1]:.2f} CPU-s ({args.records / vigil_times[-1]:,.0f} records/CPU-s), "
              f"bare loop {bare_times[-1]:.2f} CPU-s ({args.records / bare_times[-1]:,.0f} records/CPU-s), "
              f"ratio {bare_times[-1] / vigil_times[-1]:.2f}", flush=True)
    assert counts is not None
    print(f"{args.records:,} records ({source.stat().st_size / 2**20:.0f} MiB): {counts.records_out:,} out, "
          f"{counts.suppressed:,} suppressed, {counts.refused_batches} of {counts.batches} batches refused")
    best_v, best_b = min(vigil_times), min(bare_times)
    print(f"best of {args.rounds}: vigil {best_v:.2f} CPU-s ({args.records / best_v:,.0f} records/CPU-s) vs bare loop "
          f"{best_b:.2f} CPU-s ({args.records / best_b:,.0f} records/CPU-s): throughput ratio {best_b / best_v:.2f}; "
          f"median ratio {statistics.median(b / v for v, b in zip(vigil_times, bare_times, strict=True)):.2f}")
    for path in work.iterdir():
        path.unlink()
    work.rmdir()


if __name__ == "__main__":
    main()
