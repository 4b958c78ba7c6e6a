"""A request is done only when every copy was searched and read: stores without a subject mapping
and records that cannot be read make the answer incomplete, never "no data found" or "done"."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from moto import mock_aws
from vigil.retention.keys import RetentionKeys

from tests.test_retention_world import PRIMARY, days_ago, jsonl
from tests.test_subject_world import REPLICAS, SubjectWorld, log
from vigil.aws import Aws
from vigil.cli.main import main
from vigil.demo.seed import Seeder
from vigil.policy import load_policy
from vigil.subjects.locate import find_subject


def _unmapped_consent(data: dict) -> None:
    """The consent store as the spec's policy has it: no `subject_from_key`."""
    next(s for s in data["stores"] if s["name"] == "consent").pop("subject_from_key")


def _open_requests(world: SubjectWorld) -> list[dict]:
    items = [{k: v["S"] for k, v in i.items() if "S" in v} for i in world.items("vigil-requests")]
    return [i for i in items if i.get("status") == "open"]


def test_store_without_subject_mapping_makes_every_answer_incomplete(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch, change=_unmapped_consent)
        world.build(others=5)
        capsys.readouterr()
        assert world.subject("find", "alice") == 1
        out, err = capsys.readouterr()
        assert "incomplete: consent was not searched" in err and "no data found" not in out

        package = tmp_path / "package"
        assert world.subject("request", "add", "alice", "--kind", "access") == 0
        assert world.subject("export", "alice", out=package) == 1
        err = capsys.readouterr().err
        assert "incomplete: consent was not searched" in err
        readme = (package / "README.md").read_text()
        assert "This answer is incomplete" in readme and "consent was not searched" in readme
        assert (package / "contacts.json").exists(), "what was found is still handed over"

        assert world.subject("request", "add", "alice", "--kind", "erase") == 0
        assert world.subject("erase", "alice", "--apply", out=tmp_path / "erase") == 1
        assert "incomplete: consent was not searched" in capsys.readouterr().err
        plan = json.loads((tmp_path / "erase" / "subject-erase.json").read_text())
        assert plan["complete"] is False and plan["verify"]["status"] == "incomplete"
        assert not any(v["key"] == "contacts/alice.json" for v in world.estate()["example-contacts"]), "what was found is erased"
        assert sorted(i["kind"] for i in _open_requests(world)) == ["access", "erase"], "neither request is marked done"

        run = tmp_path / "run"
        main(["run", "--policy", str(world.policy_path), "--apply", "--output", str(run), "--region", PRIMARY])
        stage = next(s for s in json.loads((run / "run.json").read_text())["stages"] if s["stage"] == "requests")
        assert stage["exit_code"] == 1
        assert sorted(i["kind"] for i in _open_requests(world)) == ["access", "erase"], "vigil run does not close it either"


def test_unreadable_record_is_incomplete_never_no_data(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=5)
        truncated = json.dumps({"ts": days_ago(1), "account_id": "dave", "email": "dave@example.com"})[:-1] + ', "ip": \n'
        broken = jsonl([log("bob", 1)]) + truncated
        world.put("example-usage-logs", "web/broken.jsonl", broken)
        capsys.readouterr()
        assert world.subject("find", "dave") == 1
        out, err = capsys.readouterr()
        assert "no data found" not in out
        assert "incomplete: 1 record unreadable in web-logs" in err
        assert world.subject("find", "dave", "--json") == 1
        answer = json.loads(capsys.readouterr().out)
        assert answer["complete"] is False and answer["incomplete"] == ["1 record unreadable in web-logs"]

        assert world.subject("request", "add", "dave", "--kind", "erase") == 0
        run = tmp_path / "run"
        main(["run", "--policy", str(world.policy_path), "--apply", "--output", str(run), "--region", PRIMARY])
        assert [i["subject"] for i in _open_requests(world)] == ["dave"], "an erase that could not read a record is not done"
        assert "dave@example.com" in world.current("example-usage-logs", "web/broken.jsonl").decode()


def test_line_separators_in_a_record_never_hide_the_subject(tmp_path: Path, monkeypatch, capsys) -> None:
    """U+2028 / U+2029 / U+0085 inside a JSON string are valid JSON: the record is found, or (while
    the parser splits on them) the answer is incomplete; a request is never done with the data left."""
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=5)
        record = log("erin", 5)
        record["user_agent"] = "Agent\u2028with\u2029odd\u0085separators"
        world.put("example-usage-logs", "web/odd.jsonl", json.dumps(record, ensure_ascii=False) + "\n")
        capsys.readouterr()
        code = world.subject("find", "erin")
        out, err = capsys.readouterr()
        assert "no data found" not in out
        assert code == 0 or "unreadable in web-logs" in err

        assert world.subject("request", "add", "erin", "--kind", "erase") == 0
        main(["run", "--policy", str(world.policy_path), "--apply", "--output", str(tmp_path / "run"), "--region", PRIMARY])
        estate = world.estate()
        left = any(b"erin@example.com" in v.get("body", b"") for b in ("example-usage-logs", REPLICAS["example-usage-logs"])
                   for v in estate[b])
        assert not (left and not _open_requests(world)), "the request was marked done with the email still stored"


def test_export_includes_older_versions_and_replicas(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=5)
        out = tmp_path / "package"
        assert world.subject("export", "alice", out=out) == 0
        contacts = json.loads((out / "contacts.json").read_text())
        assert contacts["records"] == [{"name": "alice", "v": 2}]
        others = contacts["other_copies"]
        assert [(c["records"], c["current"], c["replica"]) for c in others] == [
            ([{"name": "alice", "v": 1}], False, False),
            ([{"name": "alice", "v": 2}], True, True), ([{"name": "alice", "v": 1}], False, True)]
        assert all(c["version_id"] and c["written"].endswith("Z") for c in others)
        assert others[1]["region"] == "us-west-2"
        logs = json.loads((out / "web-logs.json").read_text())
        older = [r["path"] for c in logs["other_copies"] if not c["replica"] for r in c["records"]]
        assert older == ["/p/7"], "the value held only in an older version is exported"
        readme = (out / "README.md").read_text()
        assert "older versions and copies" in readme and "`other_copies`" in readme


def test_export_file_names_are_unique(tmp_path: Path, monkeypatch) -> None:
    def collide(data: dict) -> None:
        names = {"contacts": "my data", "consent": "my_data", "billing": "My_Data"}
        for store in data["stores"]:
            store["name"] = names.get(store["name"], store["name"])

    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch, change=collide)
        world.build(others=5)
        out = tmp_path / "package"
        assert world.subject("export", "alice", out=out) == 0
        stores = {json.loads(p.read_text())["store"]: p.name for p in out.glob("*.json")}
        assert {k: stores[k] for k in ("my data", "my_data", "My_Data")} == \
            {"my data": "my_data.json", "My_Data": "My_Data-2.json", "my_data": "my_data-3.json"}
        readme = (out / "README.md").read_text()
        assert all(name.replace("_", "\\_") in readme or name in readme for name in stores.values())


def test_shipped_policy_and_demo_data_are_searched_in_every_store(policy_path: Path) -> None:
    """With the repository's policy.yaml every store maps the subject, and the demo's data sits where
    the mapping says: find reaches every store and the answer is complete."""
    policy = load_policy(policy_path)
    now = datetime.now(UTC)
    with mock_aws():
        aws = Aws()
        for store in policy.s3_stores:
            for bucket, region in ((store.bucket, policy.regions.primary), (f"{store.bucket}-replica", policy.regions.backup)):
                s3 = aws.client("s3", region)
                extra = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
                s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True, **extra)
        ddb = aws.client("dynamodb", policy.regions.primary)
        for table, key in (("accounts", "account_id"), ("referrals", "id")):
            ddb.create_table(TableName=table, KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                             AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
        Seeder(aws, policy, now, subjects=12).run()
        found = find_subject(aws, policy, RetentionKeys(evidence=b"e" * 32, pseudonym=b"p" * 32), "ACC-00005", now)
        assert found.incomplete == []
        assert {s.store for s in found.stores if s.copies} == {s.name for s in policy.stores}
        billing = found.store("billing")
        assert all(c.key.startswith("invoices/ACC-00005/") for c in billing.copies)
