"""Generalization ladder (issue 21, "Anonymization that loses less"): before suppressing or
refusing, a batch climbs its category's ladder; the lowest rung that reaches k within
max_suppression wins, and S3, DynamoDB and `vigil anonymize` share that one judgement."""
from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import product
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from vigil.retention.kanon import judge
from vigil.retention.ledger import read_lines
from vigil.retention.transforms import Anonymizer, generalize_ip, truncate_time

from tests.helpers import ROOT
from tests.test_retention_dynamodb import by_key, seed, session, sessions_policy
from tests.test_retention_s3 import old_logs
from tests.test_retention_world import World, jsonl, store_plan
from vigil.policy import PolicyError, load_policy
from vigil.policy.models import Category
from vigil.stages.anonymize import AnonymizeOptions, anonymize

LADDER = {"ts": ["truncate_time:week", "truncate_time:month"], "ip": ["generalize_ip:16", "generalize_ip:8"]}


def category(k: int = 5, max_suppression: float = 0.05, ladder: dict | None = None) -> Category:
    return Category.model_validate({"retain": "P90D", "action": "anonymize",
                                    "anonymize": {"ip": "generalize_ip", "ts": "truncate_time:day", "path": "keep"},
                                    "verify": {"quasi_identifiers": ["ip", "ts"], "k": k, "max_suppression": max_suppression,
                                               "ladder": LADDER if ladder is None else ladder}})


def test_rungs_generalize_further_and_keep_the_format() -> None:
    assert generalize_ip("203.0.113.77", 16) == generalize_ip("203.0.113.0/24", 16) == "203.0.0.0/16"
    assert generalize_ip("2001:db8:12:34::1", 16) == "2001:db8::/32"
    assert generalize_ip("10.1.2.3", 8) == "10.0.0.0/8" and generalize_ip("junk", 16) == "[REDACTED]"
    assert truncate_time("2026-03-05T17:45:12Z", "week") == "2026-03-02T00:00:00Z"  # the Monday
    assert truncate_time("2026-03-05T17:45:12Z", "month") == "2026-03-01T00:00:00Z"
    assert truncate_time("2026-03-05T17:45:12Z", "year") == "2026-01-01T00:00:00Z"
    assert truncate_time("2026-03-05 17:45:12", "month") == "2026-03-01 00:00:00"
    assert truncate_time(1772732712, "week") == 1772409600
    for unit in ("week", "month", "year"):  # idempotent, and the day transform leaves a rung's value alone
        once = truncate_time("2026-03-05T17:45:12Z", unit)
        assert truncate_time(once, unit) == once == truncate_time(once, "day")
    assert generalize_ip(generalize_ip("10.1.2.3", 16)) == "10.1.0.0/16"


@pytest.mark.parametrize("ladder,where,message", [
    ({"path": ["redact"]}, "ladder.path", "not one of verify.quasi_identifiers"),
    ({"ts": ["truncate_time:month", "truncate_time:week"]}, "ladder.ts[1]", "not coarser"),
    ({"ts": ["truncate_time:day"]}, "ladder.ts[0]", "not coarser"),
    ({"ip": ["truncate_time:week"]}, "ladder.ip[0]", "does not generalize"),
    ({"ip": ["generalize_ip:40"]}, "ladder.ip[0]", "not a generalization"),
    ({"ts": []}, "ladder.ts", "at least one rung"),
])
def test_a_bad_ladder_is_refused_naming_file_line_and_key(tmp_path: Path, ladder: dict, where: str, message: str) -> None:
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    data["categories"]["usage_logs"]["verify"]["ladder"] = ladder
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    text = str(caught.value)
    assert f"categories.usage_logs.verify.{where}" in text and message in text and f"{path}:" in text, text


def _share(anonymizer: Anonymizer, records: list[dict], node: dict[str, int]) -> float:
    """Independently of kanon: the share of records in classes below k with each field at its level."""
    keys = []
    for record in records:
        key = []
        for q in anonymizer.quasi:
            value, level = record.get(q), node.get(q, 0)
            if level and value is not None:
                value = anonymizer.ladder[q][level - 1][1](value)
            key.append(str(value))
        keys.append(tuple(key))
    sizes = Counter(keys)
    return sum(n for n in sizes.values() if n < anonymizer.k) / len(records)


visits = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(0, 40), st.integers(0, 60)), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(visits, st.integers(2, 6), st.sampled_from([0.0, 0.05, 0.2]),
       st.sampled_from([LADDER, {"ts": LADDER["ts"]}, {"ip": ["generalize_ip:16"]}, {}]))
def test_output_meets_k_or_is_refused_and_no_lower_rung_was_enough(rows, k, max_suppression, ladder) -> None:
    anonymizer = Anonymizer(category(k, max_suppression, ladder), None)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    records = [anonymizer.record({"ip": f"10.{a}.{b}.9", "ts": (start + timedelta(days=day, hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  "path": "/"}) for a, b, day, hour in rows]
    judged = judge(anonymizer, records)
    climbing = [q for q in ladder]
    nodes = [dict(zip(climbing, levels, strict=True)) for levels in product(*(range(len(ladder[q]) + 1) for q in climbing))]
    if judged.refused is not None:
        assert all(_share(anonymizer, records, node) > max_suppression for node in nodes)
        return
    published = [r for i, r in enumerate(judged.records) if i not in judged.suppressed]
    sizes = Counter(tuple(str(r.get(q)) for q in anonymizer.quasi) for r in published)
    assert all(n >= k for n in sizes.values()), "every published class has at least k records"
    assert len(judged.suppressed) <= max_suppression * len(records)
    chosen = {q: next(i + 1 for i, (label, _) in enumerate(anonymizer.ladder[q]) if label == judged.rung[q]) for q in judged.rung}
    height = sum(chosen.values())
    for node in nodes:
        if sum(node.values()) < height:
            assert _share(anonymizer, records, node) > max_suppression, f"{node} was enough below {chosen}"


def test_vigil_anonymize_climbs_instead_of_refusing_and_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5")
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    data["categories"]["usage_logs"]["verify"]["ladder"] = LADDER
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    start = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday: one visitor a day from each of 10 /24s of one /16
    records = [{"ip": f"10.9.{n}.1", "ts": (start + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ"), "path": "/"}
               for n in range(10) for d in range(6)]
    (tmp_path / "in.jsonl").write_text(jsonl(records))
    outcome = anonymize(AnonymizeOptions("usage_logs", policy, input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "out.jsonl")))
    c = outcome.counts
    assert (c.records_out, c.suppressed, c.refused_batches) == (60, 0, 0)
    assert c.generalized == {"ts=truncate_time:week": 1}  # 6 a class by week; by /16 alone, 10 a day: both reach k=5,
    # and with the same height the ladder's order (ts first) decides
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert {r["ts"] for r in out} == {"2026-03-02T00:00:00Z"} and {r["ip"] for r in out} == {f"10.9.{n}.0/24" for n in range(10)}

    lonely = records + [{"ip": "192.0.2.1", "ts": "2026-09-09T10:00:00Z", "path": "/"} for _ in range(20)]
    (tmp_path / "in.jsonl").write_text(jsonl(lonely))
    data["categories"]["usage_logs"]["verify"]["ladder"] = {"ts": ["truncate_time:week"]}
    policy.write_text(yaml.safe_dump(data, sort_keys=False))
    records = [{"ip": f"10.{n}.{n}.1", "ts": (start + timedelta(days=30 * n)).strftime("%Y-%m-%dT%H:%M:%SZ"), "path": "/"} for n in range(12)]
    (tmp_path / "in.jsonl").write_text(jsonl(records))
    outcome = anonymize(AnonymizeOptions("usage_logs", policy, input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "o2.jsonl")))
    assert outcome.counts.refused_batches == 1 and outcome.exit_code == 1
    assert "no rung of the generalization ladder is enough: the closest, ts=truncate_time:week" in outcome.counts.problems[0]


def with_ladder(ladder: dict, category_name: str = "usage_logs"):
    def change(data: dict) -> None:
        data["categories"][category_name]["verify"]["ladder"] = ladder
    return change


def test_s3_retention_climbs_and_records_the_rung_in_plan_and_ledger(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, with_ladder({"ip": ["generalize_ip:16"]}))
        world.bucket("example-usage-logs")
        records = [{**r, "ip": f"203.0.{i}.7"} for i, r in enumerate(old_logs(6))]  # six /24s of one /16, one day
        world.put("example-usage-logs", "web/a.jsonl", jsonl(records))
        code, plan, out = world.retain("--apply", "--store", "web-logs")
        logs = store_plan(plan, "web-logs")
        assert code == 0, logs
        assert logs["counts"]["anonymize"] == 6 and logs["counts"]["suppress"] == 0
        assert logs["generalized"] == {"ip=generalize_ip:16": 1}
        written = [json.loads(line) for line in world.current("example-usage-logs", "web/a.jsonl").decode().splitlines()]
        assert {r["ip"] for r in written} == {"203.0.0.0/16"}
        actions = [json.loads(line) for line in (out / "retention-plan.actions.jsonl").read_text().splitlines()]
        assert [a["target"].get("generalization") for a in actions if a["action"] == "anonymize_object"] == [{"ip": "generalize_ip:16"}]
        ledger = [line for line in read_lines(out / "ledger.jsonl") if line["action"] == "anonymize_object"]
        assert {line["phase"] for line in ledger} == {"intent", "outcome"}
        assert all(line["target"]["generalization"] == {"ip": "generalize_ip:16"} for line in ledger)
        code, plan, _ = world.retain("--apply", "--store", "web-logs")  # a /16 is anonymized already: nothing to do
        assert code == 0 and store_plan(plan, "web-logs")["counts"]["anonymize"] == 0


def test_dynamodb_items_are_written_at_the_batchs_rung(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, sessions_policy(
            verify={"quasi_identifiers": ["ip"], "k": 2, "max_suppression": 0.0, "ladder": {"ip": ["generalize_ip:16"]}}))
        seed(world, [session("a", "203.0.113.7", 40), session("b", "203.0.114.8", 41), session("c", "203.0.115.9", 50)])
        code, plan, out = world.retain("--apply", "--store", "sessions")
        summary = store_plan(plan, "sessions")
        assert code == 0, summary
        assert summary["counts"]["anonymize"] == 3 and summary["generalized"] == {"ip=generalize_ip:16": 1}
        assert {item["ip"]["S"] for item in by_key(world).values()} == {"203.0.0.0/16"}
        ledger = [line for line in read_lines(out / "ledger.jsonl") if line["action"] == "anonymize_items"]
        assert ledger and all(line["target"]["generalization"] == {"ip": "generalize_ip:16"} for line in ledger)
