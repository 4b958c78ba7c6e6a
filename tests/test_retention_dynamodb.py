"""DynamoDB items in an anonymizing category: transformed in place (or moved to a pseudonymized
key), suppressed below k, written one transaction per batch, guarded against concurrent change."""
from __future__ import annotations

import copy
import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto import mock_aws
from vigil.retention.apply import Applier, hashed_target
from vigil.retention.keys import load_keys
from vigil.retention.ledger import Ledger, chain_ok, read_lines
from vigil.retention.scan import ScanContext, anonymizer_for, scan_store, store_rules

from tests.test_retention_world import KEY, World, days_ago, store_plan
from vigil.aws import Aws
from vigil.policy import load_policy

SESSIONS = {
    "description": "Web sessions", "retain": "P30D", "action": "anonymize",
    "anonymize": {"session_id": "keep", "ip": "generalize_ip", "account_id": "pseudonymize", "ts": "truncate_time:day",
                  "pages": "keep"},
    "verify": {"quasi_identifiers": ["ip"], "k": 2, "max_suppression": 0.5},
    "basis": "Aggregated for trend analysis",
}


def sessions_policy(key: str = "session_id", **category: Any):
    def change(data: dict) -> None:
        data["categories"]["sessions"] = copy.deepcopy({**SESSIONS, **category})
        data["stores"].append({"name": "sessions", "kind": "dynamodb", "table": "sessions", "category": "sessions",
                               "timestamp_attribute": "ts", "subject_attribute": "account_id"})
        data["holds"] = [{"reason": "Litigation 42", "subjects": ["held"]}]
        if key != "session_id":
            data["categories"]["sessions"]["anonymize"] = {**SESSIONS["anonymize"], key: "pseudonymize"}
    return change


def session(sid: str, ip: str, age_days: float, account: str = "acct-1", **extra: Any) -> dict[str, Any]:
    item = {"session_id": {"S": sid}, "ip": {"S": ip}, "ts": {"S": days_ago(age_days)}, "account_id": {"S": account},
            "user_agent": {"S": "Mozilla/5.0"}, "pages": {"N": "3"}}
    return {**item, **extra}


def seed(world: World, items: list[dict[str, Any]], key: str = "session_id") -> None:
    world.table("sessions", key)
    for item in items:
        world.ddb.put_item(TableName="sessions", Item=item)


def by_key(world: World, key: str = "session_id") -> dict[str, dict[str, Any]]:
    return {i[key]["S"]: i for i in world.items("sessions")}


def test_expired_items_are_anonymized_in_place_and_lonely_ones_suppressed(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, sessions_policy())
        seed(world, [session("a1", "203.0.113.7", 40), session("a2", "203.0.113.99", 41), session("a3", "203.0.113.8", 50),
                     session("b1", "198.51.100.4", 45), session("b2", "198.51.100.5", 60, account="acct-2"),
                     session("lonely", "192.0.2.1", 70),  # alone in its /24: below k=2, suppressed
                     session("fresh", "203.0.113.7", 3), session("kept", "203.0.113.7", 90, account="held")])
        code, plan, out = world.retain("--store", "sessions")  # dry run first: nothing changes
        assert code == 0 and store_plan(plan, "sessions")["counts"]["anonymize"] == 5
        assert by_key(world)["a1"]["ip"]["S"] == "203.0.113.7"

        code, plan, out = world.retain("--apply", "--store", "sessions")
        summary = store_plan(plan, "sessions")
        assert code == 0, summary
        assert {k: summary["counts"][k] for k in ("anonymize", "suppress", "keep", "held", "error")} == {
            "anonymize": 5, "suppress": 1, "keep": 1, "held": 1, "error": 0}
        assert summary["verify"] == {"status": "pass", "remaining": 0}
        assert summary["unnamed_fields"] == {"user_agent": 6}
        items = by_key(world)
        assert set(items) == {"a1", "a2", "a3", "b1", "b2", "fresh", "kept"}
        a1 = items["a1"]
        assert a1["ip"] == {"S": "203.0.113.0/24"} and a1["ts"]["S"].endswith("T00:00:00Z")
        assert a1["account_id"] == {"S": hmac.new(KEY, b"acct-1", "sha256").hexdigest()}
        assert a1["pages"] == {"N": "3"} and "user_agent" not in a1 and a1["vigil-anonymized"] == {"S": "1"}
        assert items["fresh"] == session("fresh", "203.0.113.7", 3)
        assert items["kept"]["ip"] == {"S": "203.0.113.7"} and "vigil-anonymized" not in items["kept"]
        ledger = (out / "ledger.jsonl").read_text()
        assert "acct-1" not in ledger and '"a1"' not in ledger and "203.0.113" not in ledger
        assert chain_ok(out / "ledger.jsonl")

        code, plan, _ = world.retain("--apply", "--store", "sessions")  # a second run finds nothing to do
        summary = store_plan(plan, "sessions")
        assert code == 0 and summary["counts"]["anonymize"] == 0 and summary["counts"]["keep"] == 6
        assert by_key(world)["a1"] == a1


def test_a_pseudonymized_key_moves_the_item_to_its_new_key(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, sessions_policy(key="visitor"))
        seed(world, [{**session(f"s{i}", "203.0.113.7", 40), "visitor": {"S": f"v{i}"}} for i in range(60)]
             + [{**session("new", "203.0.113.7", 1), "visitor": {"S": "v-new"}}], key="visitor")
        code, plan, _ = world.retain("--apply", "--store", "sessions")
        summary = store_plan(plan, "sessions")
        assert code == 0, summary
        assert summary["counts"]["anonymize"] == 60 and summary["verify"]["status"] == "pass"
        items = by_key(world, "visitor")
        assert len(items) == 61 and "v-new" in items and not any(f"v{i}" in items for i in range(60))
        assert hmac.new(KEY, b"v7", "sha256").hexdigest() in items


def test_a_key_the_category_would_drop_is_an_error_and_nothing_changes(tmp_path: Path, monkeypatch) -> None:
    def change(data: dict) -> None:
        sessions_policy()(data)
        del data["categories"]["sessions"]["anonymize"]["session_id"]
    with mock_aws():
        world = World(tmp_path, monkeypatch, change)
        seed(world, [session("a1", "203.0.113.7", 40), session("a2", "203.0.113.8", 40), session("fresh", "203.0.113.7", 1)])
        before = by_key(world)
        code, plan, _ = world.retain("--apply", "--store", "sessions")
        summary = store_plan(plan, "sessions")
        assert code == 1
        assert summary["counts"]["error"] == 2 and summary["counts"]["keep"] == 1
        assert "'session_id' is not named in the category's anonymize map" in summary["errors"][0]["reason"]
        assert summary["verify"] == {"status": "fail", "remaining": 2}
        assert by_key(world) == before


def test_a_batch_below_k_is_refused_whole(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, sessions_policy(verify={"quasi_identifiers": ["ip"], "k": 3, "max_suppression": 0.1}))
        seed(world, [session("a1", "203.0.113.7", 40), session("a2", "203.0.113.8", 40), session("b1", "198.51.100.1", 40)])
        before = by_key(world)
        code, plan, _ = world.retain("--apply", "--store", "sessions")
        summary = store_plan(plan, "sessions")
        assert code == 1 and summary["counts"]["error"] == 3 and summary["counts"]["anonymize"] == 0
        assert "k-anonymity: 3 of 3 records" in summary["errors"][0]["reason"]
        assert summary["verify"]["status"] == "fail"
        assert by_key(world) == before


def _planned(world: World, tmp_path: Path) -> tuple[Any, list[dict[str, Any]], Any]:
    """The anonymize_items actions planned for the sessions store now (real keys, as apply gets them)."""
    policy = load_policy(world.policy_path)
    store = next(s for s in policy.stores if s.name == "sessions")
    keys = load_keys(policy)
    actions: list[dict[str, Any]] = []
    as_of = datetime.now(UTC)
    with ThreadPoolExecutor(4) as pool:
        scan_store(ScanContext(Aws(), policy, keys, as_of, {}, pool, actions.append), store)
    context = {"sessions": (store, store_rules(policy, store, as_of, {}), anonymizer_for(policy, store, keys))}
    return keys, actions, context


def test_an_item_changed_after_the_plan_skips_its_batch(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, sessions_policy())
        seed(world, [session("a1", "203.0.113.7", 40), session("a2", "203.0.113.8", 40)])
        keys, actions, context = _planned(world, tmp_path)
        assert [a["action"] for a in actions] == ["anonymize_items"]
        world.ddb.put_item(TableName="sessions", Item=session("a2", "203.0.113.9", 40))  # written after the plan
        ledger = Ledger(tmp_path / "ledger.jsonl", "r")
        stats = Applier(Aws(), keys, ledger, context.__getitem__).run(actions)
        ledger.close()
        assert stats.skipped == 1 and stats.ok == 0
        assert "changed since the plan" in list(read_lines(tmp_path / "ledger.jsonl"))[-1]["detail"]
        assert by_key(world)["a1"] == session("a1", "203.0.113.7", 40)


def test_a_batch_written_before_a_crash_is_resumed_once(tmp_path: Path, monkeypatch) -> None:
    """The kill fell between the transaction and its outcome line: the next run closes the intent
    as done (the items are anonymized now), counts it once, and plans nothing for them again."""
    with mock_aws():
        world = World(tmp_path, monkeypatch, sessions_policy())
        seed(world, [session(f"a{i}", "203.0.113.7", 40) for i in range(5)] + [session("b0", "198.51.100.1", 40)])
        keys, actions, context = _planned(world, tmp_path)
        out = tmp_path / "evidence"
        out.mkdir()
        ledger = Ledger(out / "ledger.jsonl", "killed", load_policy(world.policy_path).sha256, keys.fingerprint)
        applier = Applier(Aws(), keys, ledger, context.__getitem__)
        ledger.write("intent", actions[0], hashed_target(actions[0], keys))
        assert applier.anonymize_items(actions[0])[0] == "ok"  # done, but the outcome line never written
        ledger.close()

        code, plan, _ = world.retain("--apply", "--store", "sessions", out=out)
        assert code == 0
        assert store_plan(plan, "sessions")["counts"]["anonymize"] == 0
        lines = list(read_lines(out / "ledger.jsonl"))
        assert chain_ok(out / "ledger.jsonl")
        outcomes = [ln for ln in lines if ln["phase"] == "outcome"]
        assert len(outcomes) == 1 and outcomes[0]["outcome"] == "ok" and outcomes[0]["detail"]["resumed"]
        assert outcomes[0]["target"]["count"] == 6
        assert all("vigil-anonymized" in i for i in world.items("sessions") if i["session_id"]["S"] != "b0")


def test_ret02_in_check_fails_on_raw_items_past_retention_and_passes_once_anonymized(tmp_path: Path, monkeypatch) -> None:
    from tests.test_retention_ret02 import _ret02
    with mock_aws():
        world = World(tmp_path, monkeypatch, sessions_policy())
        seed(world, [session(f"a{i}", "203.0.113.7", 40) for i in range(3)] + [session("fresh", "203.0.113.7", 1)])
        finding = next(f for resource, f in _ret02(world).items() if resource.endswith(":table/sessions"))
        assert finding.status.value == "fail" and finding.evidence.observed["expired"] == 3
        assert world.retain("--apply", "--store", "sessions")[0] == 0
        finding = next(f for resource, f in _ret02(world).items() if resource.endswith(":table/sessions"))
        assert finding.status.value == "pass", finding.reason


def test_a_numeric_key_the_category_would_turn_into_text_is_an_error_and_nothing_changes(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, sessions_policy(key="visitor"))
        world.ddb.create_table(TableName="sessions", KeySchema=[{"AttributeName": "visitor", "KeyType": "HASH"}],
                               AttributeDefinitions=[{"AttributeName": "visitor", "AttributeType": "N"}],
                               BillingMode="PAY_PER_REQUEST")
        for i in range(3):
            world.ddb.put_item(TableName="sessions", Item={**session(f"s{i}", "203.0.113.7", 40), "visitor": {"N": str(i)}})
        before = sorted(json.dumps(i, sort_keys=True) for i in world.items("sessions"))
        code, plan, _ = world.retain("--apply", "--store", "sessions")
        summary = store_plan(plan, "sessions")
        assert code == 1 and summary["counts"]["error"] == 3
        assert "'visitor' is of type N, and pseudonymize would write it as text" in summary["errors"][0]["reason"]
        assert sorted(json.dumps(i, sort_keys=True) for i in world.items("sessions")) == before


def test_a_moved_key_that_collides_with_an_existing_item_fails_the_batch_and_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, sessions_policy(key="visitor"))
        taken = hmac.new(KEY, b"v0", "sha256").hexdigest()  # a young item already sits where v0 would move
        seed(world, [{**session("s0", "203.0.113.7", 40), "visitor": {"S": "v0"}},
                     {**session("s1", "203.0.113.8", 40), "visitor": {"S": "v1"}},
                     {**session("young", "203.0.113.9", 1), "visitor": {"S": taken}}], key="visitor")
        before = by_key(world, "visitor")
        code, plan, out = world.retain("--apply", "--store", "sessions")
        assert code == 1
        outcome = [ln for ln in read_lines(out / "ledger.jsonl") if ln["phase"] == "outcome"]
        assert [(ln["outcome"], ln["detail"]) for ln in outcome] == [
            ("failed", "an anonymized key collides with an existing item; the batch was not written")]
        assert store_plan(plan, "sessions")["verify"] == {"status": "fail", "remaining": 2}
        assert by_key(world, "visitor") == before, "all or nothing: v1 is not moved either"
