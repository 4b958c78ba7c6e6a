"""The demo's seed data: every store, ages inside retention, closed accounts, holds, replica copies, deterministic."""
from __future__ import annotations

import csv
import io
import json
import threading
from datetime import UTC, datetime

from tests.helpers import repo_policy
from vigil.demo.seed import Seeder, hold_policy_text
from vigil.policy import load_policy

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Recorder:
    """Stands in for boto3 clients (not for Vigil): records every call the seeder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()

    def client(self, service: str, region: str) -> Recorder._Client:
        return Recorder._Client(self, region)

    class _Client:
        def __init__(self, recorder: Recorder, region: str) -> None:
            self.recorder, self.region = recorder, region

        def __getattr__(self, name: str):
            def call(**kwargs):
                with self.recorder.lock:
                    self.recorder.calls.append((name, self.region, kwargs))
                return {}
            return call


def seeded(seed: int = 7) -> tuple[Recorder, object]:
    recorder = Recorder()
    out = Seeder(recorder, repo_policy(), NOW, seed=seed).run()
    return recorder, out


def _key(call: tuple[str, str, dict]) -> str:
    return json.dumps([call[0], call[1], {k: (v.decode() if isinstance(v, bytes) else v) for k, v in call[2].items()}], sort_keys=True)


def test_same_seed_same_data_and_another_seed_differs() -> None:
    first, _ = seeded(7)
    again, _ = seeded(7)
    other, _ = seeded(8)
    assert sorted(map(_key, first.calls)) == sorted(map(_key, again.calls))
    assert sorted(map(_key, first.calls)) != sorted(map(_key, other.calls))


def test_every_store_gets_data_and_every_object_its_replica_copy() -> None:
    policy = repo_policy()
    recorder, out = seeded()
    puts = [c for c in recorder.calls if c[0] == "put_object"]
    for bucket in policy.data_buckets:
        source = {c[2]["Key"] for c in puts if c[2]["Bucket"] == bucket and c[1] == "us-east-1"}
        replica = {c[2]["Key"] for c in puts if c[2]["Bucket"] == f"{bucket}-replica" and c[1] == "us-west-2"}
        assert source and source == replica, bucket
    tables = {c[2]["TableName"] for c in recorder.calls if c[0] == "put_item"}
    assert tables == policy.data_tables
    assert all(out.records[s.name] > 0 for s in policy.stores if s.name != "subscribers")
    holds = [c for c in recorder.calls if c[0] == "put_object_legal_hold"]
    assert len(holds) == 2 * len(out.legal_holds) == 4


def test_ages_spread_inside_retention_and_some_accounts_closed() -> None:
    policy = repo_policy()
    recorder, out = seeded()
    accounts = [c[2]["Item"] for c in recorder.calls if c[0] == "put_item" and c[2]["TableName"] == "accounts"]
    closed = [datetime.fromisoformat(a["closed_at"]["S"].replace("Z", "+00:00")) for a in accounts if "closed_at" in a]
    assert len(closed) == out.closed > 0
    assert all((NOW - c).days <= policy.categories["contact"].retain.approx_days() for c in closed)
    stamps = []
    for name, _region, kwargs in recorder.calls:
        if name == "put_object" and kwargs["Bucket"] == "example-call-records":
            stamps += [row["started_at"] for row in csv.DictReader(io.StringIO(kwargs["Body"].decode()))]
    ages = [(NOW - datetime.fromisoformat(s.replace("Z", "+00:00"))).days for s in stamps]
    assert min(ages) < 30 and max(ages) > 365  # spread across the 18 months
    assert max(ages) <= policy.categories["call_history"].retain.approx_days()


def test_the_demo_policy_adds_a_hold_and_stays_valid(tmp_path) -> None:
    from tests.conftest import ROOT

    path = tmp_path / "policy.yaml"
    path.write_text(hold_policy_text((ROOT / "policy.yaml").read_text(), ["ACC-00003", "ACC-00008"]))
    policy = load_policy(path)
    assert policy.holds[0].subjects == ["ACC-00003", "ACC-00008"]
    assert policy.stores == repo_policy().stores
