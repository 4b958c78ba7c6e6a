"""A `subject erase --apply` killed with SIGKILL mid-way resumes from the ledger on the next run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vigil.retention.ledger import chain_ok, read_lines

from tests.test_retention_resume import _env
from tests.test_retention_world import jsonl
from tests.test_subject_world import SubjectWorld, log

OBJECTS = 80


def test_sigkill_mid_erase_then_resume(tmp_path: Path, monkeypatch, moto_server: str) -> None:
    world = SubjectWorld(tmp_path, monkeypatch, endpoint=moto_server)
    world.create_all()
    bodies = {f"web/{i:03d}.jsonl": jsonl([log(f"user-{i}", i), log("alice", i), log(f"other-{i}", i + 1)]) for i in range(OBJECTS)}
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: world.put("example-usage-logs", *kv), bodies.items()))
    out = tmp_path / "evidence"
    command = [sys.executable, "-m", "vigil", "subject", "erase", "alice", "--apply", "--policy", str(world.policy_path),
               "--output", str(out), "--endpoint-url", moto_server, "--workers", "1"]
    env = _env()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ledger = out / "ledger.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if ledger.exists() and ledger.read_bytes().count(b"\n") >= 7:
            break
        time.sleep(0.005)
    assert process.poll() is None, f"the erase ended before it could be killed: {process.stderr.read().decode()[-2000:]}"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = list(read_lines(ledger))
    assert 0 < len(killed) < 2 * OBJECTS, "killed mid-erase"

    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    versions = [v for v in world.versions("example-usage-logs") if v["key"].startswith("web/")]
    assert len(versions) == OBJECTS, "one version per object: every raw version is gone"
    assert world.versions("example-usage-logs-replica", "us-west-2") == []
    for version in versions:
        lines = version["body"].decode().splitlines()
        assert "alice" not in version["body"].decode()
        assert lines == [line for line in bodies[version["key"]].splitlines() if '"alice"' not in line], "others untouched"
    assert chain_ok(ledger)
    entries = list(read_lines(ledger))
    intents = Counter(e["action_id"] for e in entries if e["phase"] == "intent")
    outcomes = Counter(e["action_id"] for e in entries if e["phase"] == "outcome")
    assert set(intents) == set(outcomes), "every intent has an outcome after the resume"
    assert any((e.get("detail") or {}).get("resumed") for e in entries if e["phase"] == "outcome" and isinstance(e.get("detail"), dict))
    assert "alice" not in ledger.read_text()
