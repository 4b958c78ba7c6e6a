"""`vigil demo` end to end, as a user runs it: a subprocess, a fresh folder, no cloud account."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import ROOT, SPEC

pytestmark = pytest.mark.e2e

DELIBERATE = {
    ("TLS-01", "arn:aws:s3:::example-call-records"),
    ("BAK-05", "arn:aws:dynamodb:us-east-1:123456789012:table/referrals"),
    ("MFA-02", "arn:aws:iam::123456789012:user/demo-intern"),
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path, float]:
    out = tmp_path_factory.mktemp("demo") / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "vigil", "demo", "--output", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    return done, out, time.monotonic() - started


def test_demo_runs_and_exits_zero(demo) -> None:
    done, out, seconds = demo
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert str(out.resolve()) in done.stdout.replace("\n", "")
    assert "Vigil demo: results" in done.stdout
    print(f"demo took {seconds:.1f}s")


def test_findings_hold_exactly_the_three_deliberate_failures(demo) -> None:
    _done, out, _seconds = demo
    document = json.loads((out / "findings.json").read_text())
    schema = json.loads((SPEC / "findings.schema.json").read_text())
    jsonschema.validate(document, schema)
    failed = {(f["control"], f["resource"]) for f in document["findings"] if f["status"] == "fail"}
    assert failed == DELIBERATE
    # whatever the emulator cannot do is an error that says so, never a silent pass
    for finding in document["findings"]:
        if finding["status"] == "error":
            assert "not implemented" in finding["reason"] or "emulator" in finding["reason"], finding
    passed = {f["control"] for f in document["findings"] if f["status"] == "pass"}
    assert {"ENC-01", "ENC-02", "TLS-01", "MFA-03", "BAK-01", "BAK-02", "ACC-01"} <= passed


def test_demo_policy_and_later_stages(demo) -> None:
    done, out, _seconds = demo
    policy_text = (out.parent / f"{out.name}-policy.yaml").read_text()  # beside the pack: its holds name people
    assert policy_text.startswith((ROOT / "policy.yaml").read_text().rstrip("\n"))  # the repository's policy, plus a hold
    assert "holds:" in policy_text
    assert (out / "retention-plan.json").exists()
    assert (out / "report.html").exists() and (out / "manifest.json").exists()
    assert not list(out.glob("**/signing.key")), "the private key must not be inside the pack"


def test_demo_shows_a_waiver_explain_output_and_a_subject_request(demo) -> None:
    done, out, _seconds = demo
    data = json.loads((out / "findings.json").read_text())
    waived = [f for f in data["findings"] if f.get("waived")]
    assert [(f["control"], f["status"]) for f in waived] == [("MFA-02", "fail")]  # waived, real status kept
    assert [w["state"] for w in data["waivers"]] == ["active"]
    assert "how to fix" in done.stdout  # vigil check --explain
    plan = json.loads((out.parent / f"{out.name}-subject" / "subject-erase.json").read_text())
    assert "ACC-00005" not in json.dumps(plan)  # the subject appears only as a keyed hash
    assert "erase request received" in done.stdout


def test_demo_pack_shows_the_request_it_logged_and_the_waiver(demo) -> None:
    _done, out, _seconds = demo
    counts = json.loads((out / "subject-requests.json").read_text())
    assert counts["received"] == 1 and counts["by_kind"]["erase"] == 1 and counts["open"] == 1
    summary = json.loads((out / "summary.json").read_text())
    assert summary["requests"]["open"] == 1
    assert summary["findings"]["waived"] == 1 and summary["waived"][0]["control"] == "MFA-02"
    html = (out / "report.html").read_text()
    assert "1 open, " in html and "ACC-00005" not in html


def test_the_printed_demo_report_is_twenty_pages_or_fewer(demo, tmp_path: Path) -> None:
    from vigil.evidence import screenshot

    browser = screenshot.find_browser()
    if browser is None:
        pytest.skip("Chromium is not installed (run 'make browser' to install it)")
    _done, out, _seconds = demo
    pdf = screenshot.print_pdf(out / "report.html", tmp_path / "report.pdf", browser)
    pages = screenshot.count_pages(pdf)
    print(f"printed demo report: {pages} pages")
    assert 1 <= pages <= 20


def test_the_pack_carries_the_policy_but_no_held_subjects_raw_id(demo) -> None:
    from vigil.policy import load_policy

    _done, out, _seconds = demo
    held = [subject for hold in load_policy(out.parent / f"{out.name}-policy.yaml").holds for subject in hold.subjects]
    assert held
    copy = load_policy(out / "policy-in-force.yaml")
    assert [s for hold in copy.holds for s in hold.subjects] != held and len(copy.holds[0].subjects) == len(held)
    leaks = [path.name for path in out.rglob("*") if path.is_file() and any(s.encode() in path.read_bytes() for s in held)]
    assert leaks == []


def test_demo_has_a_postgresql_store_or_says_why_not(demo) -> None:
    from vigil.retention.postgres.local_server import missing_reason

    done, out, _seconds = demo
    stores = {s["store"]: s for s in json.loads((out / "retention-plan.json").read_text())["stores"]}
    reason = missing_reason()
    if reason:
        assert f"PostgreSQL store left out of this demo: {reason}" in done.stdout.replace("\n", " ")
        assert "call-history-db" not in stores
        return
    table = stores["call-history-db"]
    assert table["kind"] == "postgres" and not table["errors"], table
    assert table["counts"]["anonymize"] > 0 and table["counts"]["keep"] > 0  # a year ahead, the older calls are due


def test_keep_running_prints_the_endpoint_and_an_export_line_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    import signal
    import urllib.request

    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "VIGIL_PSEUDONYM_KEY"}
    demo = subprocess.Popen([sys.executable, "-m", "vigil", "demo", "--keep-running", "--output", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in demo.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.strip().startswith("export "):
                break
        export = lines[-1].strip()
        assert export.startswith("export AWS_ENDPOINT_URL=http://127.0.0.1:"), "".join(lines[-30:])
        shell = dict(item.split("=", 1) for item in export.removeprefix("export ").split())
        assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "VIGIL_PSEUDONYM_KEY"} <= set(shell)
        assert any(line.startswith("endpoint: " + shell["AWS_ENDPOINT_URL"]) for line in lines)
        policy = next(line.split("--policy ", 1)[1].strip() for line in [next(demo.stdout)] if "--policy" in line)  # type: ignore[arg-type]
        # a newcomer's next command, against the emulator that is still running
        done = subprocess.run([sys.executable, "-m", "vigil", "check", "--policy", policy, "--output", str(tmp_path / "mine"), "-q"],
                              cwd=ROOT, env={**env, **shell}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 1, done.stdout + done.stderr  # the three deliberate failures, found again
        found = json.loads((tmp_path / "mine" / "findings.json").read_text())
        assert {(f["control"], f["resource"]) for f in found["findings"] if f["status"] == "fail"} == DELIBERATE
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        assert demo.returncode == 0 and "emulator stopped" in rest
        with pytest.raises(OSError):
            urllib.request.urlopen(shell["AWS_ENDPOINT_URL"], timeout=5)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
