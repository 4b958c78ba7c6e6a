"""Issue 13, "never remove what must stay, never leave behind what must go": kept records stay
byte for byte, a concurrent writer wins over a rewrite, one bad object (or a gzip bomb) fails
only itself, and a crash between a rewrite and its raw-version delete is finished by the next
run while verify fails in between."""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from moto import mock_aws
from vigil.retention import faults
from vigil.retention.records import MAX_RATIO, RATIO_FLOOR, Unreadable, gunzip, parse

from tests.conftest import ROOT
from tests.test_retention_s3 import old_logs
from tests.test_retention_world import KEY_B64, World, days_ago, jsonl, store_plan

LOGS = "example-usage-logs"


@pytest.fixture
def hooks():
    yield faults.hooks
    faults.hooks.clear()


def _young(**extra: str) -> bytes:
    return json.dumps({"ip": "198.51.100.1", "ts": days_ago(1), "account_id": "live", **extra}).encode()


def test_kept_records_stay_byte_for_byte_and_only_transformed_ones_are_written_anew(tmp_path: Path, monkeypatch) -> None:
    odd = [
        b'{ "ip" : "198.51.100.2", "ts" : "' + days_ago(1).encode() + b'", "path": "/\xe2\x80\xa8x" }',  # spaces, a raw U+2028
        b'{"ip": "198.51.100.3", "ts": "' + days_ago(1).encode() + b'", "n": NaN, "big": 1234567890123456789012345678901}',
        b'{"ip": "198.51.100.4", "ts": "' + days_ago(1).encode() + b'", "e": "\\u00e9\\ud83d\\ude00"}\r',  # escapes, CRLF
    ]
    expired = [json.dumps(r).encode() for r in old_logs(6)]
    body = b"\n".join(expired[:3] + odd[:1] + [b"", b"  "] + odd[1:] + expired[3:])  # blank lines; no final newline
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket(LOGS)
        world.put(LOGS, "web/odd.jsonl", body)
        code, plan, _ = world.retain("--apply", "--store", "web-logs")
        logs = store_plan(plan, "web-logs")
        assert code == 0, logs
        assert logs["counts"]["anonymize"] == 6 and logs["counts"]["keep"] == 3
        after = world.current(LOGS, "web/odd.jsonl")
        for line in odd:
            assert line + b"\n" in after, line
        assert b"\n\n  \n" in after and not after.endswith(b"\n")
        new = [json.loads(line) for line in after.split(b"\n") if b"203.0.113" in line]
        assert len(new) == 6 and all(r["ip"] == "203.0.113.0/24" for r in new)
        assert [v["latest"] for v in world.versions(LOGS)] == [True], "the raw version is gone"


def test_an_unreadable_record_is_kept_verbatim_and_keeps_its_raw_version(tmp_path: Path, monkeypatch) -> None:
    broken = b'{"ip": "203.0.113.9", "ts": "\xff\xfe", "email": "x@example.com"}'  # invalid UTF-8
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket(LOGS)
        world.put(LOGS, "web/x.jsonl", jsonl(old_logs(6)).encode() + broken + b"\n")
        code, plan, _ = world.retain("--apply", "--store", "web-logs")
        logs = store_plan(plan, "web-logs")
        assert code == 1 and any("not UTF-8" in e["reason"] for e in logs["errors"])
        assert world.current(LOGS, "web/x.jsonl").endswith(broken + b"\n")
        raw = [v for v in world.versions(LOGS) if not v["latest"]]
        assert len(raw) == 1 and broken in raw[0]["body"]
        assert logs["verify"]["status"] == "fail"


def test_records_module_splits_on_newline_only_and_serializes_nan_and_big_integers_exactly() -> None:
    parsed = parse(b'{"a": 1, "s": "x\xe2\x80\xa8y"}\n{"n": NaN, "b": 1234567890123456789012345678901}\n', "k.jsonl", "jsonl", None, None)
    assert len(parsed.records) == 2 and parsed.records[1].fields["b"] == 1234567890123456789012345678901
    from vigil.retention.records import render
    line = render({"n": float("nan"), "b": 1234567890123456789012345678901}, parsed)
    assert line == b'{"n":NaN,"b":1234567890123456789012345678901}\n'


def test_a_lone_surrogate_in_a_transformed_record_is_written_back_as_its_escape() -> None:
    parsed = parse(b'{"path": "/a\\ud800b", "ip": "203.0.113.9"}\n', "k.jsonl", "jsonl", None, None)
    [record] = parsed.records
    assert record.fields is not None and record.fields["path"] == "/a\ud800b"
    from vigil.retention.records import render
    line = render({"path": record.fields["path"], "ip": "203.0.113.0/24"}, parsed)
    assert line == b'{"path":"/a\\ud800b","ip":"203.0.113.0/24"}\n'
    assert json.loads(line)["path"] == record.fields["path"]  # the same value, not an exception or a replacement


def _csv(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def test_one_bad_object_is_an_error_for_itself_and_the_store_goes_on(tmp_path: Path, monkeypatch) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    nan_big = json.dumps(old_logs(6)[0]).encode()[:-1] + b', "status": 1234567890123456789012345678901, "path": NaN}'
    header = ["caller", "callee", "caller_ip", "started_at", "card_number", "duration", "notes"]
    old_row = ["+15550001", "+15550002", "192.0.2.55", days_ago(700), "4111111111111111", "61", "n"]
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket(LOGS)
        world.bucket("example-call-records")
        world.put(LOGS, "web/a-deep.jsonl", jsonl(old_logs(6)).encode() + deep + b"\n")
        world.put(LOGS, "web/b-corrupt.jsonl.gz", gzip.compress(jsonl(old_logs(6)).encode())[:-12] + b"garbage!")
        world.put(LOGS, "web/c-nan.jsonl", jsonl(old_logs(6)[1:]).encode() + nan_big + b"\n")
        world.put(LOGS, "web/d-good.jsonl", jsonl(old_logs(6)))
        world.put("example-call-records", "cdr/a-wide.csv", _csv([header, old_row[:6] + ["x" * (200 * 1024)]]))
        world.put("example-call-records", "cdr/b-good.csv", _csv([header] + [old_row] * 5))
        code, plan, _ = world.retain("--apply", "--store", "web-logs", "--store", "call-records")
        assert code == 1
        logs, calls = store_plan(plan, "web-logs"), store_plan(plan, "call-records")
        reasons = " ".join(e["reason"] for e in logs["errors"] + calls["errors"])
        assert "ListObjectVersions" not in reasons, "no bad object is mistaken for a listing failure"
        assert "nested too deeply" in reasons and "gzip data" in reasons and "field larger than field limit" in reasons
        for key in ("web/a-deep.jsonl", "web/c-nan.jsonl", "web/d-good.jsonl"):
            assert b"203.0.113.7\"" not in world.current(LOGS, key), key  # anonymized: the store went on
        assert b'"status":1234567890123456789012345678901' in world.current(LOGS, "web/c-nan.jsonl")
        assert b'"path":NaN' in world.current(LOGS, "web/c-nan.jsonl")
        assert b"+15550001" not in world.current("example-call-records", "cdr/b-good.csv")
        # What could not be read is counted as left: verify does not pass on partial coverage.
        assert logs["verify"]["status"] == "fail" and logs["verify"]["remaining"] >= 1
        assert calls["verify"]["status"] == "fail" and calls["verify"]["remaining"] >= 1


def test_a_gzip_bomb_is_refused_before_it_is_inflated_and_the_store_goes_on(tmp_path: Path, monkeypatch) -> None:
    bomb = gzip.compress(b"\n" * (64 * 2**20), compresslevel=9)
    assert len(bomb) * MAX_RATIO < RATIO_FLOOR < 64 * 2**20
    with pytest.raises(Unreadable, match="inflates past"):
        gunzip(bomb)
    two_members = gzip.compress(b"a\n") + gzip.compress(b"b\n")
    assert gunzip(two_members) == b"a\nb\n"
    with pytest.raises(Unreadable, match="truncated"):
        gunzip(two_members[:-3])
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket(LOGS)
        world.put(LOGS, "web/bomb.jsonl.gz", bomb)
        world.put(LOGS, "web/good.jsonl.gz", gzip.compress(jsonl(old_logs(6)).encode()))
        code, plan, _ = world.retain("--apply", "--store", "web-logs")
        logs = store_plan(plan, "web-logs")
        assert code == 1 and logs["counts"]["anonymize"] == 6
        assert any("inflates past" in e["reason"] for e in logs["errors"])
        assert b"203.0.113.7\"" not in gzip.decompress(world.current(LOGS, "web/good.jsonl.gz"))
        assert world.current(LOGS, "web/bomb.jsonl.gz") == bomb


@pytest.mark.parametrize("same_bytes", [False, True])
def test_a_concurrent_writer_wins_over_a_rewrite_and_the_object_is_planned_again(tmp_path: Path, monkeypatch, hooks,
                                                                                 same_bytes: bool) -> None:
    raw = jsonl(old_logs(6)).encode()
    fresh = raw + _young() + b"\n"
    written = []

    def writer(s3, bucket: str, key: str) -> None:  # the application appends a record between read and write
        written.append(s3.put_object(Bucket=bucket, Key=key, Body=raw if same_bytes else fresh)["VersionId"])
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket(LOGS)
        world.put(LOGS, "web/x.jsonl", raw)
        hooks["rewrite.before_put"] = writer
        code, plan, out = world.retain("--apply", "--store", "web-logs")
        hooks.clear()
        assert len(written) == 1
        outcomes = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines() if '"outcome"' in line]
        assert [o["outcome"] for o in outcomes if o["action"] == "anonymize_object"] == ["skipped"]
        versions = world.versions(LOGS)
        latest = next(v for v in versions if v["latest"])
        assert latest["version"] == written[0] and len(versions) == 2, "the writer's version is current; vigil's is gone"
        code, plan, _ = world.retain("--apply", "--store", "web-logs")  # planned again: now it goes through
        assert code == 0
        after = world.current(LOGS, "web/x.jsonl")
        assert b"203.0.113.7\"" not in after
        if not same_bytes:
            assert after.endswith(_young() + b"\n"), "the fresh record survives, byte for byte"
        assert [v["latest"] for v in world.versions(LOGS)] == [True]


def test_subject_erase_leaves_a_concurrent_write_alone(tmp_path: Path, monkeypatch, hooks) -> None:
    others = [{**r, "ts": days_ago(1)} for r in old_logs(6)]
    mine = {"ip": "198.51.100.9", "ts": days_ago(1), "account_id": "acct-9", "path": "/me"}
    raw = jsonl(others + [mine]).encode()
    fresh = raw + _young() + b"\n"

    def writer(s3, bucket: str, key: str) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=fresh)
    with mock_aws():
        world = World(tmp_path, monkeypatch)
        world.bucket(LOGS)
        world.put(LOGS, "web/x.jsonl", raw)
        hooks["rewrite.before_put"] = writer
        from vigil.cli.main import main
        main(["subject", "erase", "acct-9", "--apply", "--policy", str(world.policy_path), "--output", str(tmp_path / "e")])
        hooks.clear()
        assert world.current(LOGS, "web/x.jsonl") == fresh, "the concurrent version is current, untouched"
        plan = json.loads((tmp_path / "e" / "subject-erase.json").read_text())
        assert plan["outcome"]["skipped"] == 1 and plan["verify"]["status"] == "fail"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", VIGIL_PSEUDONYM_KEY=KEY_B64,
               PYTHONPATH=str(ROOT))
    return env


def test_a_crash_between_rewrite_and_raw_delete_is_finished_and_verify_fails_meanwhile(tmp_path: Path, monkeypatch,
                                                                                      moto_server: str) -> None:
    def held(data: dict) -> None:
        data["holds"] = [{"reason": "litigation", "subjects": ["acct-0"], "stores": ["web-logs"]}]
    world = World(tmp_path, monkeypatch, held, endpoint=moto_server)
    world.bucket(LOGS)
    records = old_logs(7)  # acct-0's record is held; the six others are past retention
    world.put(LOGS, "web/x.jsonl", jsonl(records))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "vigil", "retain", "--apply", "--policy", str(world.policy_path), "--output", str(out),
               "--endpoint-url", moto_server, "--store", "web-logs"]
    crashed = subprocess.run(command, env={**_env(), "VIGIL_CRASH_AT": "rewrite.before_raw_delete"}, capture_output=True, timeout=120)
    assert crashed.returncode == 137
    assert len(world.versions(LOGS)) == 2, "rewritten, the raw version still there"

    code, plan, _ = world.retain("--store", "web-logs", out=tmp_path / "look")  # a dry run sees the raw records as due
    logs = store_plan(plan, "web-logs")
    assert logs["counts"]["delete"] == 6 and logs["counts"]["held"] >= 1

    resumed = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    versions = world.versions(LOGS)
    assert len(versions) == 1, "the raw version is deleted by the resumed run"
    held_line = json.dumps(records[0]).encode() + b"\n"
    assert held_line in versions[0]["body"], "the held record survives verbatim"
    assert b"203.0.113.8\"" not in versions[0]["body"]
    plan = json.loads((out / "retention-plan.json").read_text())
    assert store_plan(plan, "web-logs")["verify"] == {"status": "pass", "remaining": 0}


def test_subject_erase_finishes_a_raw_version_left_beside_held_records(tmp_path: Path, monkeypatch, hooks) -> None:
    def held(data: dict) -> None:
        data["holds"] = [{"reason": "litigation", "subjects": ["acct-1"], "stores": ["web-logs"]}]
    records = [{**r, "ts": days_ago(1)} for r in old_logs(6)]  # acct-1's record is held; acct-3 asks to be erased

    def fail(**_: object) -> None:
        raise RuntimeError("killed between the rewrite and the raw-version delete")
    with mock_aws():
        world = World(tmp_path, monkeypatch, held)
        world.bucket(LOGS)
        world.put(LOGS, "web/x.jsonl", jsonl(records))
        from vigil.cli.main import main
        argv = ["subject", "erase", "acct-3", "--apply", "--policy", str(world.policy_path)]
        hooks["rewrite.before_raw_delete"] = fail
        main([*argv, "--output", str(tmp_path / "e1")])
        hooks.clear()
        assert len(world.versions(LOGS)) == 2, "rewritten; the raw version with acct-3's record is still there"
        main([*argv, "--output", str(tmp_path / "e2")])
        versions = world.versions(LOGS)
        assert len(versions) == 1 and b'"acct-3"' not in versions[0]["body"]
        assert json.dumps(records[1]).encode() + b"\n" in versions[0]["body"], "the held record survives verbatim"
        plan = json.loads((tmp_path / "e2" / "subject-erase.json").read_text())
        assert plan["verify"]["remaining"] == 0
