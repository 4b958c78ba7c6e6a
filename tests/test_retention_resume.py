"""A run killed with SIGKILL mid-apply resumes from the ledger: no action lost, none counted twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vigil.retention.ledger import chain_ok, read_lines

from tests.aging import YEAR, written_ago
from tests.conftest import ROOT
from tests.test_retention_s3 import old_logs
from tests.test_retention_world import KEY_B64, World, jsonl

OBJECTS, LOGS = 1200, 40


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null", VIGIL_PSEUDONYM_KEY=KEY_B64,
               PYTHONPATH=str(ROOT))
    return env


def test_sigkill_mid_apply_then_resume(tmp_path: Path, monkeypatch, moto_server: str) -> None:
    world = World(tmp_path, monkeypatch, endpoint=moto_server)
    world.bucket("example-billing")
    world.bucket("example-usage-logs")
    with ThreadPoolExecutor(16) as pool, written_ago(8 * YEAR):
        list(pool.map(lambda i: world.put("example-billing", f"inv/{i:05d}.json", "{}"), range(OBJECTS)))
        list(pool.map(lambda i: world.put("example-usage-logs", f"web/{i:03d}.jsonl", jsonl(old_logs(6))), range(LOGS)))
    out = tmp_path / "evidence"
    command = [sys.executable, "-m", "vigil", "retain", "--apply", "--policy", str(world.policy_path), "--output", str(out),
               "--endpoint-url", moto_server, "--store", "billing", "--store", "web-logs", "--workers", "1"]
    process = subprocess.Popen(command, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ledger = out / "ledger.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if ledger.exists() and ledger.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.005)
    assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read().decode()[-2000:]}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    killed = list(read_lines(ledger))
    assert killed and len(killed) < 2 * (OBJECTS // 1000 + 1 + LOGS), "killed mid-apply"

    resumed = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert world.versions("example-billing") == []
    for version in world.versions("example-usage-logs"):
        assert version["metadata"].get("vigil-anonymized")
        assert b"203.0.113.7" not in version["body"] and b"user_agent" not in version["body"]

    assert chain_ok(ledger)
    lines = list(read_lines(ledger))
    assert lines[:len(killed)] == killed, "the resumed run appends to the same chain"
    open_intents: Counter = Counter()
    for line in lines:
        open_intents[line["action_id"]] += 1 if line["phase"] == "intent" else -1
        assert open_intents[line["action_id"]] >= 0, "an outcome always follows its intent"
    assert not +open_intents, "every intent has its outcome"
    ok = [ln for ln in lines if ln["phase"] == "outcome" and ln["outcome"] == "ok"]
    deleted = sum(ln["target"]["count"] for ln in ok if ln["target"].get("location") == "arn:aws:s3:::example-billing")
    assert deleted == OBJECTS, "each deleted version is counted exactly once"
    anonymized = Counter(ln["action_id"] for ln in ok if ln["action"] == "anonymize_object")
    assert len(anonymized) == LOGS and set(anonymized.values()) == {1}
    dangling = {ln["action_id"] for ln in killed if ln["phase"] == "intent"} - {ln["action_id"] for ln in killed if ln["phase"] == "outcome"}
    for action_id in dangling:  # each intent the kill left open is closed by the resumed run, once
        closing = [ln for ln in lines[len(killed):] if ln["phase"] == "outcome" and ln["action_id"] == action_id
                   and isinstance(ln["detail"], dict) and ln["detail"].get("resumed")]
        assert len(closing) == 1
    ok_ids = Counter(ln["action_id"] for ln in ok)
    assert set(ok_ids.values()) == {1}, "no action is counted ok twice"
    assert "inv/0" not in ledger.read_text()
    plan = json.loads((out / "retention-plan.json").read_text())
    assert all(s["verify"]["status"] == "pass" for s in plan["stores"])
