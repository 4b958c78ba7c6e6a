"""Issue 13, "never early": a future --as-of never applies, overlapping stores are refused, and a
subject id matches only itself (with its attribute's type)."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from moto import mock_aws
from vigil.retention.guard import CLOCK_SKEW, refuse_future_as_of

from tests.aging import YEAR, written_ago
from tests.test_retention_world import NOW, World, store_plan
from vigil.cli.main import main
from vigil.errors import UsageError
from vigil.scheduler.pipeline import JobOptions

IN_2035 = "2035-01-01"


def _billing_world(tmp_path: Path, monkeypatch) -> World:
    world = World(tmp_path, monkeypatch)
    world.bucket("example-billing")
    for i in range(4):  # one year old: inside billing's seven years
        with written_ago(YEAR):
            world.put("example-billing", f"inv/{i}.json", "{}")
    return world


@pytest.mark.parametrize("command", [
    ["retain", "--store", "billing"],
    ["run"],
    ["schedule"],
    ["subject", "erase", "acct-1"],
    ["subject", "process"],
])
def test_future_as_of_with_apply_exits_2_naming_the_flag_and_changes_nothing(tmp_path: Path, monkeypatch, capsys,
                                                                              command: list[str]) -> None:
    with mock_aws():
        world = _billing_world(tmp_path, monkeypatch)
        before = world.versions("example-billing")
        out = tmp_path / "out"
        code = main([*command, "--policy", str(world.policy_path), "--output", str(out), "--as-of", IN_2035, "--apply"])
        assert code == 2
        assert "--as-of" in capsys.readouterr().err
        assert world.versions("example-billing") == before
        assert not (out / "ledger.jsonl").exists()


def test_the_guard_is_shared_by_every_path_and_allows_skew_and_the_past() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    refuse_future_as_of(now + CLOCK_SKEW - timedelta(seconds=1), True, now)  # a clock a little ahead is fine
    refuse_future_as_of(now - 10 * YEAR, True, now)  # a past instant only ever deletes less
    refuse_future_as_of(now + YEAR, False, now)  # a preview
    with pytest.raises(UsageError, match="--as-of"):
        refuse_future_as_of(now + CLOCK_SKEW + timedelta(seconds=1), True, now)
    with pytest.raises(UsageError, match="--as-of"):  # the scheduler's and the Lambda's options
        JobOptions(as_of=now + YEAR, apply=True).validate()
    JobOptions(as_of=now + YEAR, apply=False).validate()


def test_engine_refuses_a_future_as_of_with_apply_whoever_calls_it(tmp_path: Path, monkeypatch) -> None:
    from vigil.retention.engine import run_retention
    from vigil.retention.keys import load_keys

    from vigil.aws import Aws
    from vigil.policy import load_policy

    with mock_aws():
        world = _billing_world(tmp_path, monkeypatch)
        before = world.versions("example-billing")
        policy = load_policy(world.policy_path)
        with pytest.raises(UsageError, match="--as-of"):
            run_retention(Aws(), policy, load_keys(policy), datetime(2035, 1, 1, tzinfo=UTC), tmp_path, "r", apply=True,
                          store_names=["billing"])
        assert world.versions("example-billing") == before


def test_dry_run_judges_holds_at_the_as_of_instant_and_says_so(tmp_path: Path, monkeypatch) -> None:
    until = (NOW + timedelta(days=60)).date().isoformat()

    def hold(data: dict) -> None:
        data["holds"] = [{"reason": "litigation", "prefixes": ["inv/0"], "until": until, "stores": ["billing"]}]
    with mock_aws():
        world = World(tmp_path, monkeypatch, hold)
        world.bucket("example-billing")
        with written_ago(8 * YEAR):
            for i in range(2):
                world.put("example-billing", f"inv/{i}.json", "{}")
        code, plan, _ = world.retain("--store", "billing")  # now: the hold is in force
        assert code == 0 and store_plan(plan, "billing")["counts"]["held"] == 1
        assert plan["run"]["preview"] is False and "as-of instant" in plan["run"]["judged_at"]
        code, plan, _ = world.retain("--store", "billing", "--as-of", IN_2035)  # then: it has lapsed
        assert code == 0 and plan["run"]["preview"] is True and plan["run"]["mode"] == "dry-run"
        assert store_plan(plan, "billing")["counts"] == {**store_plan(plan, "billing")["counts"], "held": 0, "delete": 2}
        assert len(world.versions("example-billing")) == 2


def _overlapping(tmp_path: Path, second: dict) -> Path:
    data = yaml.safe_load((Path(__file__).resolve().parent.parent / "policy.yaml").read_text())
    data["stores"].append(second)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("second, key", [
    ({"name": "old-bills", "kind": "s3", "bucket": "example-billing", "prefix": "bills/ACC-001", "category": "usage_logs",
      "layout": "jsonl", "timestamp_field": "ts"}, "prefix"),
    ({"name": "web-all", "kind": "s3", "bucket": "example-usage-logs", "category": "marketing", "layout": "object"}, "bucket"),
    ({"name": "referrals-2", "kind": "dynamodb", "table": "referrals", "category": "billing",
      "timestamp_attribute": "created_at"}, "table"),
])
def test_overlapping_stores_are_refused_with_file_line_and_key(tmp_path: Path, capsys, second: dict, key: str) -> None:
    path = _overlapping(tmp_path, second)
    assert main(["policy", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if f"name: {second['name']}" in text)
    index = len(yaml.safe_load(path.read_text())["stores"]) - 1
    assert f"{path}:" in err and f"stores[{index}].{key}" in err
    assert "overlaps" in err or "also store" in err
    assert any(f":{n}:" in err for n in range(line, line + 8))
    assert main(["retain", "--policy", str(path), "--output", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_stores_on_one_bucket_with_disjoint_prefixes_are_allowed(tmp_path: Path) -> None:
    path = _overlapping(tmp_path, {"name": "api-logs", "kind": "s3", "bucket": "example-usage-logs", "prefix": "api/",
                                   "category": "usage_logs", "layout": "jsonl", "timestamp_field": "ts"})
    assert main(["policy", "validate", str(path)]) == 0


def test_a_numeric_looking_subject_id_matches_only_itself(tmp_path: Path, monkeypatch) -> None:
    def by_subject(data: dict) -> None:
        referrals = next(s for s in data["stores"] if s["name"] == "referrals")
        referrals["subject_attribute"] = "account_id"
    with mock_aws():
        world = World(tmp_path, monkeypatch, by_subject)
        world.table("referrals", "id")
        world.table("accounts", "account_id")
        for bucket in ("example-contacts", "example-usage-logs", "example-call-records"):
            world.bucket(bucket)
        recent = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
        world.ddb.put_item(TableName="referrals", Item={"id": {"S": "seven"}, "account_id": {"N": "7"}, "created_at": {"S": recent}})
        world.ddb.put_item(TableName="referrals", Item={"id": {"S": "double-oh"}, "account_id": {"S": "007"}, "created_at": {"S": recent}})
        world.ddb.put_item(TableName="referrals", Item={"id": {"S": "seven-text"}, "account_id": {"S": "7"}, "created_at": {"S": recent}})
        # exit 1: billing and consent cannot be searched by subject (the erase says it is incomplete)
        main(["subject", "erase", "007", "--apply", "--policy", str(world.policy_path), "--output", str(tmp_path / "e")])
        assert sorted(i["id"]["S"] for i in world.items("referrals")) == ["seven", "seven-text"]
        main(["subject", "erase", "7", "--apply", "--policy", str(world.policy_path), "--output", str(tmp_path / "e7")])
        assert world.items("referrals") == []  # 7 is both the number and the text "7"
        plan = json.loads((tmp_path / "e7" / "subject-erase.json").read_text())
        assert plan["verify"]["remaining"] == 0
