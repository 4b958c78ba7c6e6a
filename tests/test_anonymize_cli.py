"""`vigil anonymize` (cli.md "Anonymizing a file or a stream"): the bytes retention's rewrite writes,
k judged per batch, .gz both ways, counts on stderr, bad input exit 2 with no output file."""
from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from vigil.retention.anonymize import new_body, rewrite
from vigil.retention.decide import Rules
from vigil.retention.model import Version
from vigil.retention.records import parse
from vigil.retention.transforms import Anonymizer

from tests.helpers import ROOT, repo_policy
from vigil.cli.main import main
from vigil.stages.anonymize import AnonymizeOptions, anonymize

KEY = b"p" * 32
POLICY = str(ROOT / "policy.yaml")


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(KEY).decode())


def web_logs(n: int, lonely: int = 0) -> list[dict]:
    """Five visitors per (/24, day) class, `lonely` alone in theirs; awkward values in kept fields."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        out.append({"ip": f"198.51.{i // 5 % 200}.{i % 250}", "ts": (start + timedelta(days=i // 1000, seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "user_agent": "Mozilla/5.0", "account_id": f"acct-{i % 37}", "email": f"u{i}@example.com",
                    "path": ["/é\u2028x", {"deep": [1.5, 2**70]}, "/plain"][i % 3], "status": 200, "cookie": "c"})
    for j in range(lonely):
        out.append({"ip": f"2001:db8:{j}::1", "ts": "2025-06-01T10:00:00Z", "path": "/lonely", "status": 404})
    return out


def jsonl(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def retention_rewrite(body: bytes, store_name: str, key: str) -> bytes:
    """What retention writes for an object whose every record is past retention."""
    policy = repo_policy()
    store = next(s for s in policy.stores if s.name == store_name)
    category = policy.category_of(store)
    rules = Rules.for_store(policy, store.name, category, datetime(2100, 1, 1, tzinfo=UTC), {})
    version = Version(key, "v1", True, False, datetime(2025, 1, 1, tzinfo=UTC))
    version.parsed = parse(gzip.compress(body) if key.endswith(".gz") else body, key, store.layout, store.timestamp_field, store.subject_field)
    result = rewrite(rules, store, version, Anonymizer(category, KEY), False, remove=False)
    assert result.refused is None and result.n("anonymize") > 0
    out = new_body(result, version, store)
    return gzip.decompress(out) if key.endswith(".gz") else out


def test_jsonl_output_is_byte_identical_to_retentions_rewrite(tmp_path: Path) -> None:
    body = jsonl(web_logs(300, lonely=3))  # 3 of 303 below k=5: suppressed, within max_suppression
    (tmp_path / "in.jsonl").write_bytes(body)
    outcome = anonymize(AnonymizeOptions("usage_logs", POLICY, input=str(tmp_path / "in.jsonl"), output=str(tmp_path / "out.jsonl")))
    assert (tmp_path / "out.jsonl").read_bytes() == retention_rewrite(body, "web-logs", "web/a.jsonl")
    c = outcome.counts
    assert (c.records_in, c.records_out, c.suppressed, c.batches, c.refused_batches) == (303, 300, 3, 1, 0)
    assert c.unnamed == {"cookie": 300} and outcome.exit_code == 0


def test_csv_output_is_byte_identical_to_retentions_rewrite(tmp_path: Path) -> None:
    rows = ["caller,callee,caller_ip,started_at,card_number,duration,note"]
    rows += [f'c{i},"x,{i}",203.0.113.{i % 9},2025-01-0{1 + i % 9}T1{i % 10}:30:00Z,41111111{i:08d},{i},"two\nlines"' for i in range(50)]
    body = ("\n".join(rows) + "\n").encode()
    (tmp_path / "in.csv.gz").write_bytes(gzip.compress(body))
    outcome = anonymize(AnonymizeOptions("call_history", POLICY, input=str(tmp_path / "in.csv.gz"), output=str(tmp_path / "out.csv")))
    assert outcome.format == "csv" and outcome.counts.records_out == 50
    assert (tmp_path / "out.csv").read_bytes() == retention_rewrite(body, "call-records", "calls/a.csv.gz")


def test_k_is_judged_per_batch_and_a_batch_over_max_suppression_is_refused(tmp_path: Path) -> None:
    records = web_logs(20)  # four classes of five ...
    records[-1]["ts"] = "2025-09-09T00:00:00Z"  # ... the last one now four plus a lonely one
    (tmp_path / "in.jsonl").write_bytes(jsonl(records))
    out = tmp_path / "out.jsonl.gz"
    outcome = anonymize(AnonymizeOptions("usage_logs", POLICY, batch=10, input=str(tmp_path / "in.jsonl"), output=str(out)))
    c = outcome.counts
    # batch 2 (records 11-20): classes of 5, 4 and 1 -> 5 of 10 below k, over 5%: refused, not written
    assert (c.batches, c.refused_batches, c.refused_records, c.records_out) == (2, 1, 10, 10)
    assert "batch 2 (10 records) refused" in c.problems[0] and outcome.exit_code == 1
    written = gzip.decompress(out.read_bytes()).splitlines()
    assert len(written) == 10 and all(json.loads(line)["ip"].endswith(".0/24") for line in written)


def test_stdin_to_stdout_gz_sniffed_counts_on_stderr_and_unreadable_records_reported() -> None:
    body = jsonl(web_logs(10)) + b"not json\n" + b'["a list"]\n' + b"\xff\xfe\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "vigil", "anonymize", "--category", "usage_logs", "--policy", POLICY],
                          input=gzip.compress(body), capture_output=True, env=env, timeout=120)
    assert done.returncode == 1, done.stderr  # records were left out: said, never silent
    assert len(done.stdout.splitlines()) == 10 and b"acct-" not in done.stdout and b"example.com" not in done.stdout
    err = done.stderr.decode()
    assert "13 in, 10 out, 0 suppressed (k), 3 unreadable" in err
    assert "record 11: not JSON" in err and "record 12: not a JSON object" in err and "record 13: not UTF-8" in err
    assert "198.51" not in err and "u1@" not in err  # counts and reasons, never the data


def test_bad_input_is_exit_2_and_leaves_no_output_file(tmp_path: Path, capsys) -> None:
    bomb = gzip.compress(b"\n" * (200 * 2**20))  # ~200 KiB inflating to 200 MiB: past 100x and the floor
    (tmp_path / "bomb.jsonl.gz").write_bytes(bomb)
    out = tmp_path / "out.jsonl"
    assert main(["anonymize", "--category", "usage_logs", "--policy", POLICY, str(tmp_path / "bomb.jsonl.gz"), str(out)]) == 2
    assert "gzip inflates past 100 times" in capsys.readouterr().err
    (tmp_path / "cut.jsonl.gz").write_bytes(gzip.compress(jsonl(web_logs(50)))[:-30])
    assert main(["anonymize", "--category", "usage_logs", "--policy", POLICY, str(tmp_path / "cut.jsonl.gz"), str(out)]) == 2
    assert "truncated" in capsys.readouterr().err
    assert main(["anonymize", "--category", "contact", "--policy", POLICY, str(tmp_path / "cut.jsonl.gz"), str(out)]) == 2
    assert "no anonymize transforms" in capsys.readouterr().err
    assert list(tmp_path.glob("out*")) == [] and list(tmp_path.glob(".out*")) == []


def test_a_missing_pseudonymize_key_is_exit_2(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("VIGIL_PSEUDONYM_KEY")
    (tmp_path / "in.jsonl").write_bytes(jsonl(web_logs(5)))
    assert main(["anonymize", "--category", "usage_logs", "--policy", POLICY, str(tmp_path / "in.jsonl"), str(tmp_path / "o")]) == 2
    assert "VIGIL_PSEUDONYM_KEY is not set" in capsys.readouterr().err and not (tmp_path / "o").exists()
