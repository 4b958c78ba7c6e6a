"""Benchmark `vigil check` over 3 accounts x 200 buckets: the fan-out against the one-account check run three times.

A moto server in its own process (127.0.0.1) holds three member accounts, 200 buckets each
(half compliant, half defaults only). Times (a) the one-account check (`run_check`, the
default 32 workers) run in each account one after another, as a person would without --org,
and (b) `run_check_accounts` with --accounts-parallel 1 and 3 (each account's pool shrinks
so the calls in flight stay bounded in all). moto answers in microseconds on loopback, so the
work is CPU-bound there; --latency-ms adds a sleep before each request (a stand-in for the
tens of milliseconds a real AWS round trip takes, where overlap matters). Prints figures; asserts nothing.

    .venv/bin/python bench/accounts_bench.py [--buckets 200] [--accounts 3] [--latency-ms 0 20]
"""
from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vigil.checks.accounts import run_check_accounts  # noqa: E402
from vigil.checks.runner import run_check  # noqa: E402

from bench.common import POLICY_HEAD, vigil_env  # noqa: E402
from vigil import aws as vigil_aws  # noqa: E402
from vigil.accounts.model import Account  # noqa: E402
from vigil.accounts.plans import plan_accounts  # noqa: E402
from vigil.accounts.sessions import assume  # noqa: E402
from vigil.policy import load_policy  # noqa: E402

REGION = "us-east-1"
ACCOUNT_IDS = ("111111111111", "222222222222", "333333333333", "444444444444", "555555555555")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, url
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("moto server did not start")


def seed(url: str, account: str, buckets: int) -> None:
    creds = boto3.client("sts", region_name=REGION, endpoint_url=url).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/seed", RoleSessionName="bench-seed")["Credentials"]
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=url, aws_access_key_id=creds["AccessKeyId"],
                      aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    for i in range(buckets):
        name = f"bench-{account}-{i:04d}"
        s3.create_bucket(Bucket=name)
        if i % 2:
            continue  # broken: defaults only
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def with_latency(seconds: float) -> None:
    """Every client vigil makes sleeps this long before each request (a stand-in for a network round trip)."""
    original = vigil_aws.Aws.client

    def client(self, service: str, region: str):
        made = original(self, service, region)
        if seconds and not getattr(made, "_bench_latency", False):
            made.meta.events.register("before-send", lambda **_: time.sleep(seconds))
            made._bench_latency = True
        return made

    vigil_aws.Aws.client = client


def one_account_checks(base: vigil_aws.Aws, policy, accounts: list[Account], now: datetime) -> int:
    """The one-account check in each account, one after another (as without --org)."""
    return sum(len(run_check(assume(base, a, "bench", REGION), policy, [REGION], now, "bench", retention=None).findings)
               for a in accounts)


def fanned_out(base: vigil_aws.Aws, policy, accounts: list[Account], now: datetime, parallel: int) -> int:
    plans = plan_accounts(accounts, policy, (REGION,), load_policy)
    return len(run_check_accounts(base, policy, accounts, plans, now, "bench", retention=None, parallel=parallel).findings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buckets", type=int, default=200)
    parser.add_argument("--accounts", type=int, default=3, choices=range(1, len(ACCOUNT_IDS) + 1))
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 20.0])
    args = parser.parse_args()
    os.environ.update({k: v for k, v in vigil_env().items() if k.startswith("AWS_") or k.startswith("VIGIL_")})
    accounts = [Account(account_id, f"bench-{n}") for n, account_id in enumerate(ACCOUNT_IDS[:args.accounts])]
    server, url = start_moto()
    try:
        started = time.perf_counter()
        for account in accounts:
            seed(url, account.id, args.buckets)
        print(f"seeded {args.accounts} accounts x {args.buckets} buckets in {time.perf_counter() - started:.1f}s")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "policy.yaml"
            stores = "".join(f"  - {{name: data-{a.id}, kind: s3, bucket: bench-{a.id}-0000, category: logs, account: '{a.id}'}}\n"
                             for a in accounts)
            path.write_text(POLICY_HEAD + "categories:\n  logs: {retain: P30D, action: delete}\nstores:\n" + stores)
            policy = load_policy(path)
            print(f"python {platform.python_version()}, {os.cpu_count()} cores; best of 2 rounds")
            print(f"{'latency':>8} | {'one-account check x' + str(args.accounts) + ' in a row':>30} | "
                  f"{'--accounts-parallel 1':>22} | {'--accounts-parallel ' + str(args.accounts):>22}")
            for latency in args.latency_ms:
                with_latency(latency / 1000)
                base = vigil_aws.Aws(endpoint_url=url)
                now = datetime.now(UTC)

                serial = partial(one_account_checks, base, policy, accounts, now)
                fanned = partial(fanned_out, base, policy, accounts, now)
                times = {}
                for name, run in (("serial", serial), ("p1", partial(fanned, 1)), ("pN", partial(fanned, args.accounts))):
                    best, findings = float("inf"), 0
                    for _ in range(2):
                        t0 = time.perf_counter()
                        findings = run()
                        best = min(best, time.perf_counter() - t0)
                    times[name] = (best, findings)
                print(f"{latency:>6.0f}ms | {times['serial'][0]:>28.2f}s | {times['p1'][0]:>20.2f}s | {times['pN'][0]:>20.2f}s"
                      f"   ({times['serial'][1]} / {times['p1'][1]} / {times['pN'][1]} findings)")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
