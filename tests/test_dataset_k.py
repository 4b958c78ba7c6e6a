"""Dataset-wide k-anonymity (issue 20, `verify.scope: dataset`): k judged over everything a store
location publishes in a run, not each object alone. Against moto, through `vigil retain`."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto import mock_aws
from vigil.retention.dataset_k import WAITING, DatasetJudgement, Tally, version_digest
from vigil.retention.ledger import read_lines
from vigil.retention.model import Version
from vigil.retention.transforms import Anonymizer

from tests.conftest import _reset
from tests.inventory_reports import write_report
from tests.test_anonymize_ladder import category as ladder_category
from tests.test_retention_resume import _env
from tests.test_retention_s3 import live_logs, old_logs
from tests.test_retention_world import NOW, World, iso, jsonl, store_plan
from vigil.cli.main import main
from vigil.policy import load_policy

BUCKET = "example-usage-logs"
UNIQUE_IP = "198.18.7.9"  # a /24 no other record shares: a class of one


def dataset_scope(data: dict[str, Any], k: int = 3, max_suppression: float = 0.05) -> None:
    data["categories"]["usage_logs"]["verify"].update(scope="dataset", k=k, max_suppression=max_suppression)


def lone(n: int = 1) -> list[dict[str, Any]]:
    """Old records each in a class of their own (their /24 networks differ from every other record's)."""
    return [{**r, "ip": f"198.18.{7 + i}.9"} for i, r in enumerate(old_logs(n))]


def records(world: World, key: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in world.current(BUCKET, key).decode().splitlines()]


def spread(world: World, extra: list[dict[str, Any]]) -> None:
    """20 old records of one class (203.0.113.0, one day), one per object, so every object is below
    k on its own; `extra` in a last object with two live records."""
    world.bucket(BUCKET)
    for i, record in enumerate(old_logs(20)):
        world.put(BUCKET, f"web/{i:02}.jsonl", jsonl([record]))
    world.put(BUCKET, "web/extra.jsonl", jsonl(extra + live_logs(2)))


def test_objects_below_k_alone_are_published_whole_when_the_dataset_is_k_anonymous(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, dataset_scope)
        spread(world, lone(1))  # 1 of 21 due records in a small class: 4.8%, within 5%
        code, plan, out = world.retain("--apply", "--store", "web-logs")
        summary = store_plan(plan, "web-logs")
        assert summary["counts"]["anonymize"] == 20 and summary["counts"]["suppress"] == 1
        assert summary["k_anonymity"] == [{
            "location": f"arn:aws:s3:::{BUCKET}", "scope": "dataset", "k": 3, "records": 21, "due": 21,
            "already_anonymized": 0, "suppressed": 1, "classes_below_k": 1, "generalization": None, "refused": None}]
        for i in range(20):  # each object's one record is a class of one, published: the dataset's class has 20
            (published,) = records(world, f"web/{i:02}.jsonl")
            assert published["ip"] == "203.0.113.0/24" and "user_agent" not in published
        extra = records(world, "web/extra.jsonl")
        assert [r["ip"] for r in extra] == ["198.51.100.0", "198.51.100.1"]  # the lone record suppressed, live ones kept
        assert summary["verify"] == {"status": "pass", "remaining": 0} and code == 0
        rewrites = [ln for ln in read_lines(out / "ledger.jsonl") if ln["action"] == "anonymize_object"]
        assert len(rewrites) == 2 * 21 and all(ln["target"]["k_scope"] == "dataset" for ln in rewrites)
        assert all(ln["outcome"] == "ok" for ln in rewrites if ln["phase"] == "outcome")
        (judgement,) = [ln for ln in read_lines(out / "ledger.jsonl") if ln["phase"] == "judgement"]
        assert judgement["target"] == summary["k_anonymity"][0] and judgement["detail"] is None


def test_object_scope_refuses_the_same_objects(tmp_path: Path, monkeypatch) -> None:
    """The default judges each object alone: the same world is refused object by object."""
    with mock_aws():
        world = World(tmp_path, monkeypatch, lambda d: d["categories"]["usage_logs"]["verify"].update(k=3))
        spread(world, lone(1))
        code, plan, _ = world.retain("--store", "web-logs")
        summary = store_plan(plan, "web-logs")
        assert code == 1 and summary["counts"]["anonymize"] == 0 and "k_anonymity" not in summary
        assert any("k-anonymity" in e["reason"] for e in summary["errors"])


def test_above_max_suppression_the_whole_store_is_refused_and_nothing_changes(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, dataset_scope)
        spread(world, lone(2))  # 2 of 22 (9%) in classes below k: above 5%
        before = world.versions(BUCKET)
        code, plan, out = world.retain("--apply", "--store", "web-logs")
        summary = store_plan(plan, "web-logs")
        assert world.versions(BUCKET) == before
        (judged,) = summary["k_anonymity"]
        assert judged["suppressed"] == 2 and judged["records"] == 22
        assert judged["refused"].startswith("dataset-wide k-anonymity: 2 of 22 records (9%)")
        assert summary["counts"]["anonymize"] == summary["counts"]["suppress"] == 0
        assert summary["verify"] == {"status": "fail", "remaining": 22} and code == 1
        lines = list(read_lines(out / "ledger.jsonl"))
        assert not [ln for ln in lines if ln["action"] == "anonymize_object"]
        (judgement,) = [ln for ln in lines if ln["phase"] == "judgement"]  # the ledger says why nothing was done
        assert judgement["action"] == "judge_dataset_k" and judgement["detail"] == judged["refused"]


def test_records_anonymized_before_count_in_the_dataset(tmp_path: Path, monkeypatch) -> None:
    """A later object whose one due record is below k alone joins the class published earlier."""
    with mock_aws():
        world = World(tmp_path, monkeypatch, dataset_scope)
        world.bucket(BUCKET)
        world.put(BUCKET, "web/first.jsonl", jsonl(old_logs(3)))
        assert world.retain("--apply", "--store", "web-logs")[0] == 0
        world.put(BUCKET, "web/later.jsonl", jsonl(old_logs(1, host=90)))
        code, plan, _ = world.retain("--apply", "--store", "web-logs")
        (judged,) = store_plan(plan, "web-logs")["k_anonymity"]
        assert (judged["due"], judged["already_anonymized"], judged["suppressed"]) == (1, 3, 0) and code == 0
        assert [r["ip"] for r in records(world, "web/later.jsonl")] == ["203.0.113.0/24"]


def test_the_ladder_is_climbed_for_the_whole_dataset(tmp_path: Path, monkeypatch) -> None:
    """Two /24 networks of 2 records each: below k=3 at /24, one class of 4 at /16 for the dataset."""
    def change(data: dict[str, Any]) -> None:
        dataset_scope(data)
        data["categories"]["usage_logs"]["verify"]["ladder"] = {"ip": ["generalize_ip:16"]}

    with mock_aws():
        world = World(tmp_path, monkeypatch, change)
        world.bucket(BUCKET)
        day = iso(NOW.replace(hour=12, minute=0, second=0) - timedelta(days=200))
        for i, ip in enumerate(("10.1.1.5", "10.1.1.6", "10.1.2.5", "10.1.2.6")):
            world.put(BUCKET, f"web/{i}.jsonl", jsonl([{"ip": ip, "ts": day, "account_id": f"a{i}", "path": "/"}]))
        code, plan, out = world.retain("--apply", "--store", "web-logs")
        summary = store_plan(plan, "web-logs")
        assert summary["k_anonymity"][0]["generalization"] == "ip=generalize_ip:16" and code == 0
        assert summary["counts"]["anonymize"] == 4 and summary["generalized"] == {"ip=generalize_ip:16": 4}
        assert {records(world, f"web/{i}.jsonl")[0]["ip"] for i in range(4)} == {"10.1.0.0/16"}


def _policy(tmp_path: Path, change) -> Path:
    data = yaml.safe_load((Path(__file__).parent.parent / "policy.yaml").read_text())
    change(data)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.mark.parametrize("change,key,message", [
    (lambda d: d["categories"]["usage_logs"]["verify"].update(scope="everything"), "categories.usage_logs.verify.scope",
     "'object' or 'dataset'"),
    (lambda d: d["categories"]["marketing"].update(
        action="anonymize", anonymize={"email": "redact", "created_at": "truncate_time:day"},
        verify={"quasi_identifiers": ["created_at"], "k": 5, "scope": "dataset"}), "stores[5].category",
     "only S3 stores support"),
])
def test_a_bad_scope_names_file_line_and_key(tmp_path: Path, capsys, change, key: str, message: str) -> None:
    path = _policy(tmp_path, change)
    assert main(["policy", "validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:" in err and key in err and message in err, err


def from_report(data: dict[str, Any]) -> None:
    dataset_scope(data)
    store = next(s for s in data["stores"] if s["name"] == "web-logs")
    store["inventory"] = {"bucket": "example-inventory", "prefix": "inventory", "config_id": "all"}


def test_planned_from_an_inventory_report_the_first_pass_counts_the_report(tmp_path: Path, monkeypatch) -> None:
    """Both passes read the report's versions: an object written after it is neither counted nor
    planned (it waits for the next report), so its lone record cannot tip the share over 5%."""
    with mock_aws():
        world = World(tmp_path, monkeypatch, from_report)
        world.bucket("example-inventory")
        spread(world, lone(1))
        write_report(world.s3["us-east-1"], BUCKET, "example-inventory", "all", datetime.now(UTC))
        world.put(BUCKET, "web/after-the-report.jsonl", jsonl([lone(2)[1]]))
        _, plan, _ = world.retain("--store", "web-logs")
        summary = store_plan(plan, "web-logs")
        assert summary["inventory"]["bucket"] == "example-inventory" and summary["k_anonymity"][0]["refused"] is None
        assert (summary["k_anonymity"][0]["records"], summary["counts"]["suppress"]) == (21, 1)


def test_a_version_the_first_pass_did_not_count_waits_for_the_next_run() -> None:
    category = load_policy(Path(__file__).parent.parent / "policy.yaml").categories["usage_logs"]
    anonymizer = Anonymizer(category, bytes(32))
    judgement = DatasetJudgement(BUCKET, 3, counted=frozenset({version_digest("web/a.jsonl", "v1")}))
    version = Version("web/a.jsonl", "v2", True, False, NOW)
    record = anonymizer.record(old_logs(1)[0])
    assert judgement.judge(anonymizer, version, [record]).refused == WAITING
    counted = judgement.judge(anonymizer, Version("web/a.jsonl", "v1", True, False, NOW), [record])
    assert counted.refused is None and counted.suppressed == set()  # no class below k in this dataset's judgement


@pytest.mark.parametrize("seed", range(4))
def test_counts_spilled_to_disk_equal_counts_in_memory(seed: int) -> None:
    """The local count moves its classes to an SQLite file past `spill_at`: the same small classes
    and sums at every node of the ladder, for every k."""
    import random

    anonymizer = Anonymizer(ladder_category(ladder={"ip": ["generalize_ip:16", "generalize_ip:8"], "ts": ["truncate_time:week"]}), None)
    rng = random.Random(seed)
    memory, spilled = Tally(anonymizer), Tally(anonymizer, spill_at=5)
    for n in range(40):
        batch = [anonymizer.record({"ip": f"10.{rng.randint(0, 2)}.{rng.randint(0, 3)}.1", "ts": iso(NOW - timedelta(days=rng.randint(200, 203)))})
                 for _ in range(rng.randint(0, 6))]
        cut = rng.randint(0, len(batch))
        for tally in (memory, spilled):
            tally.add(anonymizer, Version(f"web/{n}", "v", True, False, NOW), batch[:cut], batch[cut:])
    assert spilled._db is not None, "the small limit made it spill"
    try:
        for k in (2, 3, 5, 8):
            assert {i: v for i, v in memory.below(k).items() if v != (0, 0)} == spilled.below(k)
            assert all(memory.small(i, k) == spilled.small(i, k) for i in range(len(memory.ladder)))
        assert (memory.due_records, memory.published_records, memory.counted) == \
            (spilled.due_records, spilled.published_records, spilled.counted)
    finally:
        spilled.close()
    assert spilled._db is None


def test_no_report_refuses_the_store_rather_than_judging_objects_alone(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = World(tmp_path, monkeypatch, from_report)
        world.bucket("example-inventory")
        spread(world, lone(1))
        code, plan, _ = world.retain("--store", "web-logs")
        summary = store_plan(plan, "web-logs")
        (judged,) = summary["k_anonymity"]
        assert judged["refused"].startswith("dataset-wide k-anonymity could not be counted: inventory report refused")
        assert summary["counts"]["anonymize"] == 0 and code == 1


def latest_bodies(world: World) -> dict[str, bytes]:
    return {v["key"]: v["body"] for v in world.versions(BUCKET) if v["latest"]}


def test_a_run_killed_mid_apply_resumes_to_what_an_uninterrupted_run_publishes(tmp_path: Path, monkeypatch,
                                                                                moto_server: str) -> None:
    """Killed after the first rewrite (its raw version not yet deleted), the next run counts the
    records that rewrite published with the rest, so it judges the dataset as the first run did."""
    for name in ("whole", "killed"):
        (tmp_path / name).mkdir()
    whole = World(tmp_path / "whole", monkeypatch, dataset_scope, endpoint=moto_server)
    spread(whole, lone(1))
    assert whole.retain("--apply", "--store", "web-logs")[0] == 0
    expected = latest_bodies(whole)
    _reset(moto_server)

    world = World(tmp_path / "killed", monkeypatch, dataset_scope, endpoint=moto_server)
    spread(world, lone(1))
    out = tmp_path / "killed" / "evidence"
    command = [sys.executable, "-m", "vigil", "retain", "--apply", "--policy", str(world.policy_path), "--output", str(out),
               "--endpoint-url", moto_server, "--store", "web-logs", "--workers", "1"]
    killed = subprocess.run(command, env={**_env(), "VIGIL_CRASH_AT": "rewrite.before_raw_delete"}, capture_output=True,
                            timeout=120)
    assert killed.returncode == 137, killed.stderr.decode()[-2000:]
    assert len(world.versions(BUCKET)) == 21 + 1, "one object rewritten, its raw version left"

    code, plan, _ = world.retain("--apply", "--store", "web-logs", "--workers", "1", out=out)
    (judged,) = store_plan(plan, "web-logs")["k_anonymity"]
    assert (judged["due"], judged["already_anonymized"], judged["suppressed"]) == (20, 1, 1)  # web/00 was published
    assert latest_bodies(world) == expected and code == 0
    assert store_plan(plan, "web-logs")["verify"] == {"status": "pass", "remaining": 0}
