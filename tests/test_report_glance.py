"""The report's first page, waivers, controls not evaluated, cited notices and retention in objects and records."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from vigil.checks.catalogue import catalogue
from vigil.evidence import sample
from vigil.evidence.render import write_report

from tests.test_report_html import Page

WAIVER = {"reason": "Contractor account, MFA device in the mail", "owner": "security@example.com",
          "approval": "CHG-2026-0142", "expires": "2027-01-03"}


def _edit(directory: Path, name: str, change) -> None:
    path = directory / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    """The sample run with one failure waived, three waivers (active, expired, stale), a control skipped
    for a recorded reason, an applied ledger of real action kinds and a request log with an overdue request."""
    directory = sample.write_sample(tmp_path / "run")

    def waive(data: dict) -> None:
        failing = [f for f in data["findings"] if f["status"] == "fail"]
        failing[0]["waived"] = dict(WAIVER)
        data["waivers"] = [
            {"policy_key": "waivers[0]", "control": failing[0]["control"], "resource": failing[0]["resource"], **WAIVER,
             "state": "active", "matches": [failing[0]["resource"]]},
            {"policy_key": "waivers[1]", "control": failing[1]["control"], "resource": failing[1]["resource"],
             "reason": "Old exception", "owner": "cto@example.com", "approval": "CHG-2025-0001", "expires": "2026-01-01",
             "state": "expired", "matches": [failing[1]["resource"]]},
            {"policy_key": "waivers[2]", "control": "ENC-01", "resource": "arn:aws:s3:::gone-*", "reason": "Bucket removed",
             "owner": "ops@example.com", "approval": "CHG-2026-0007", "expires": "2026-12-31", "state": "stale", "matches": []},
        ]
        data["findings"] = [f for f in data["findings"] if f["control"] != "TLS-03"]
        data["not_evaluated"] = [{"control": "TLS-03", "reason": "not selected (--severity critical)"}]

    _edit(directory, "findings.json", waive)
    entries = []
    for number, (action, target) in enumerate([
        ("delete_versions", {"location": "arn:aws:s3:::example-contacts", "count": 250, "bytes": 1}),
        ("delete_versions", {"location": "arn:aws:s3:::example-contacts", "count": 12, "bytes": 1}),
        ("anonymize_object", {"location": "arn:aws:s3:::example-usage-logs", "object": "h", "version": "v",
                              "counts": {"anonymize": 900, "suppress": 3, "delete": 40, "keep": 7}}),
        ("delete_items", {"location": "arn:aws:dynamodb:us-east-1:123456789012:table/referrals", "count": 31}),
    ]):
        common = {"ts": "2026-11-01T02:00:00Z", "run_id": "r", "action_id": f"a{number}", "action": action, "store": "s",
                  "target": target}
        entries.append({**common, "phase": "intent", "detail": None})
        entries.append({**common, "phase": "outcome", "outcome": "ok", "detail": None})
    (directory / "ledger.jsonl").write_bytes(sample.ledger_bytes(entries))
    (directory / "subject-requests.json").write_text(json.dumps(
        {"schema": "vigil.subject-requests/v1", "as_of": "2026-11-01T02:00:00Z", "deadline": "P30D", "received": 3,
         "by_kind": {"access": 1, "erase": 2}, "completed": 1, "on_time": 1, "completed_late": 0, "open": 2, "overdue": 1}))
    write_report(directory)
    return directory


def page(directory: Path) -> Page:
    return Page((directory / "report.html").read_text(encoding="utf-8"))


def glance_text(directory: Path) -> str:
    text = page(directory).visible
    return text[text.index("At a glance"):text.index("Accepted risks from the policy")]


def test_first_page_has_signature_scope_rate_problems_with_fixes_waivers_retention_and_requests(pack: Path) -> None:
    text = page(pack).visible
    findings = json.loads((pack / "findings.json").read_text())
    assert text.index("UNSIGNED") < text.index("At a glance") < text.index("Privacy promises and the controls")
    first = glance_text(pack)
    assert "123456789012" in first and "us-east-1, us-west-2" in first and findings["run"]["policy_sha256"] in first
    assert "pass rate" in first and "%" in first
    unwaived = [f for f in findings["findings"] if f["status"] in ("fail", "error") and "waived" not in f]
    for finding in unwaived:
        assert finding["reason"] in first
    assert first.count("Fix:") >= len({(f["control"], f["status"], f["reason"]) for f in unwaived})
    for value in WAIVER.values():
        assert value in first
    # retention in objects and records from the ledger's outcomes, never in batches
    assert "262 object versions deleted" in first and "31 items deleted" in first
    assert "900 records anonymized" in first and "40 records deleted" in first
    assert "2 open, 1 overdue" in first
    assert "1 active, 1 expired, 1 stale" in first


def test_a_waived_failure_is_shown_and_counted_as_waived_everywhere(pack: Path) -> None:
    findings = json.loads((pack / "findings.json").read_text())
    waived = next(f for f in findings["findings"] if "waived" in f)
    fails = sum(1 for f in findings["findings"] if f["status"] == "fail")
    summary = json.loads((pack / "summary.json").read_text())
    assert summary["findings"]["waived"] == 1 and summary["findings"]["fail"] == fails - 1
    assert summary["waived"] == [{"control": waived["control"], "resource": waived["resource"], "status": "fail", **WAIVER}]
    assert [w["state"] for w in summary["waivers"]] == ["active", "expired", "stale"]
    html = page(pack)
    rows = [a for tag, a in html.tags if tag == "tr" and a.get("data-status") == "waived" and a.get("data-control") == waived["control"]]
    assert len(rows) == 1
    section = html.visible[html.visible.index("Accepted risks from the policy"):html.visible.index("Per framework")]
    for state, owner in (("active", "security@example.com"), ("expired", "cto@example.com"), ("stale", "ops@example.com")):
        assert state in section and owner in section
    md = (pack / "report.md").read_text()
    assert "## Waivers" in md and "waived (found fail; until 2027-01-03" in md
    for value in ("Contractor account, MFA device in the mail", "security@example.com", "CHG-2026-0142", "2027-01-03"):
        assert value in md
    assert "| expired |" in md and "| stale |" in md


def test_controls_not_evaluated_carry_their_reason_and_are_counted(pack: Path) -> None:
    summary = json.loads((pack / "summary.json").read_text())
    assert summary["not_evaluated"] == {"TLS-03": "not selected (--severity critical)"}
    html = page(pack)
    section = html.visible[html.visible.index("TLS-03: "):]
    assert "Not evaluated: not selected (--severity critical)" in section
    cells = [a for tag, a in html.tags if tag == "td" and a.get("data-total")]
    assert cells  # the counts table is there; the not-evaluated count sits beside it
    first = glance_text(pack)
    assert first.index("Not evaluated (1):") < first.index("TLS-03") < first.index("not selected (--severity critical)")
    assert "TLS-03 (" in (pack / "report.md").read_text()


def test_a_control_without_findings_and_no_recorded_reason_says_why_from_its_scope(tmp_path: Path) -> None:
    directory = sample.write_sample(tmp_path / "run")
    _edit(directory, "findings.json", lambda d: d.update(findings=[f for f in d["findings"] if f["control"] != "ENC-05"]))
    write_report(directory)
    reason = json.loads((directory / "summary.json").read_text())["not_evaluated"]["ENC-05"]
    assert "nothing in its scope was found" in reason and catalogue()["ENC-05"].scope in reason


def test_promises_cite_the_notice_by_name_never_a_seed_file(pack: Path) -> None:
    html = (pack / "report.html").read_text()
    md = (pack / "report.md").read_text()
    for control in catalogue().values():
        assert control.clause.seed not in html and control.clause.seed not in md
        assert control.clause.notice and control.clause.notice in page(pack).visible
    assert "RingCentral Privacy Policy (SMS/MMS edition), section 5 Information Storage and Security" in page(pack).visible


def test_a_hold_without_an_end_reads_held_until_released(tmp_path: Path) -> None:
    directory = sample.write_sample(tmp_path / "run")
    _edit(directory, "retention-plan.json", lambda d: d["stores"][0]["holds"][0].update(until=None))
    write_report(directory)
    for name in ("report.html", "report.md"):
        text = (directory / name).read_text()
        assert "held until released" in text and "indefinitely" not in text and "until None" not in text


def test_passing_findings_keep_their_observation_behind_a_closed_disclosure(pack: Path) -> None:
    html = page(pack)
    details = [a for tag, a in html.tags if tag == "details" and "observation" in (a.get("class") or "")]
    findings = json.loads((pack / "findings.json").read_text())["findings"]
    problems = sum(1 for f in findings if f["status"] in ("fail", "error"))
    assert len(details) == len(findings)
    assert sum(1 for a in details if "open" in a) == problems  # failing evidence is printed; passing stays folded
    script = (pack / "report.html").read_text()
    assert "beforeprint" not in script  # printing does not unfold 100+ passing observations
