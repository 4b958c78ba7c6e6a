"""The ledger's hash chain, a torn last line after a kill, and how a resumed run judges the
intents a crash left open (ok, partly done, not done; per bucket for replicas)."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from vigil.retention.inventory import ObjectEntry, Version
from vigil.retention.ledger import GENESIS, Ledger, chain_ok, dangling, read_lines
from vigil.retention.resume import Resume

T = datetime(2026, 1, 1, tzinfo=UTC)


def _action(action_id: str, kind: str = "delete_versions") -> dict:
    return {"action_id": action_id, "action": kind, "store": "billing"}


def test_chain_continues_across_runs_and_survives_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path, "run1")
    ledger.write("intent", _action("a1"), {"count": 2})
    ledger.write("outcome", _action("a1"), {"count": 2}, "ok", {"deleted": 2})
    ledger.write("intent", _action("a2"), {"count": 1})
    ledger.close()
    with path.open("ab") as handle:
        handle.write(b'{"seq":3,"phase":"outc')  # killed mid-write
    assert [e["action_id"] for e in dangling(path).values()] == ["a2"]
    ledger = Ledger(path, "run2")
    ledger.write("outcome", _action("a2"), {"count": 1}, "skipped", {"resumed": True})
    ledger.close()
    raw = path.read_bytes().splitlines()
    first = json.loads(raw[0])
    assert first["prev"] == GENESIS and first["seq"] == 0 and list(first)[:8] == ["seq", "ts", "run_id", "policy_sha256", "key", "phase", "action_id", "action"]
    assert json.loads(raw[3])["prev"] == hashlib.sha256(raw[2]).hexdigest() and json.loads(raw[3])["run_id"] == "run2"
    assert chain_ok(path) and not dangling(path)
    raw[1] = raw[1].replace(b'"deleted":2', b'"deleted":3')
    path.write_bytes(b"\n".join(raw) + b"\n")
    assert not chain_ok(path), "an edited line breaks the chain"


def test_resume_judges_each_open_intent_once(tmp_path: Path) -> None:
    intents = {
        "gone": {**_action("gone"), "target": {"versions": ["h1:v1", "h1:v2"], "count": 2}},
        "half": {**_action("half"), "target": {"versions": ["h2:v1", "h3:v1"], "count": 2}},
        "none": {**_action("none"), "target": {"versions": ["h4:v1"], "count": 1}},
        "anon": {**_action("anon", "anonymize_object"),
                 "target": {"location": "arn:aws:s3:::src", "object": "h5", "version": "raw", "counts": {}}},
    }
    resume = Resume.from_intents(intents)
    resume.observe("src", "h3", ObjectEntry("k3", [Version("k3", "v1", True, False, T)]))
    resume.observe("src", "h4", ObjectEntry("k4", [Version("k4", "v1", True, False, T)]))
    resume.observe("src", "h5", ObjectEntry("k5", [Version("k5", "raw", True, False, T)]))
    # the replica already has a new current version of the same key: it must not count for the source
    resume.observe("replica", "h5", ObjectEntry("k5", [Version("k5", "new", True, False, T), Version("k5", "old", False, False, T)]))
    resume.observe("src", "unrelated", ObjectEntry("x", [Version("x", "v9", True, False, T)]))
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path, "run2")
    assert resume.resolve(ledger) == 4
    ledger.close()
    out = {line["action_id"]: line for line in read_lines(path)}
    assert (out["gone"]["outcome"], out["gone"]["target"]["count"]) == ("ok", 2)
    assert (out["half"]["outcome"], out["half"]["target"]["count"]) == ("ok", 1)
    assert (out["none"]["outcome"], out["none"]["target"]["count"]) == ("skipped", 0)
    assert out["anon"]["outcome"] == "skipped", "not rewritten in the source: planned again"
    assert all(line["detail"]["resumed"] for line in out.values())
    assert "unrelated" not in resume.present and "unrelated:v9" not in resume.present


def test_intents_of_stores_not_read_this_run_stay_open(tmp_path: Path) -> None:
    resume = Resume.from_intents({"x": {**_action("x"), "target": {"versions": ["h:v"], "count": 1}}})
    ledger = Ledger(tmp_path / "ledger.jsonl", "run2")
    assert resume.resolve(ledger, seen_stores={"web-logs"}) == 0
    ledger.close()
    assert list(dangling(tmp_path / "ledger.jsonl")) == [] and not list(read_lines(tmp_path / "ledger.jsonl"))


def test_an_intent_is_on_disk_before_write_returns_and_concurrent_intents_share_fsyncs(tmp_path: Path, monkeypatch) -> None:
    import os
    import threading

    synced: list[int] = []  # the file's size at each fsync: everything written before it is on disk
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.fstat(fd).st_size)
        real(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path, "r")
    action = {"action_id": "a", "action": "delete_versions", "store": "s"}
    ledger.write("intent", action, {"count": 1})
    assert synced == [path.stat().st_size], "the intent is on disk before the action runs"
    ledger.write("outcome", action, {"count": 1}, "ok")
    assert len(synced) == 1, "an outcome needs no fsync of its own"

    def worker(n: int) -> None:
        for i in range(25):
            ledger.write("intent", {**action, "action_id": f"{n}-{i}"}, {})
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ledger.close()
    assert 1 < len(synced) <= 1 + 200 + 1 and synced[-1] == path.stat().st_size
    assert chain_ok(path) and len(list(read_lines(path))) == 202
