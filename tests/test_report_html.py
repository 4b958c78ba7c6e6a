"""The rendered report: golden structure (parsed with html.parser), no template leaks, inert hostile text."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
from vigil.checks.catalogue import catalogue
from vigil.evidence import sample
from vigil.evidence.render import write_report

from tests.conftest import ROOT, SPEC

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>" onmouseover="alert(2)'


class Page(HTMLParser):
    """Element ids, attributes, visible text and script bodies of a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if "id" in dict(attrs):
            self.ids.add(str(dict(attrs)["id"]))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


@pytest.fixture
def policy_sha() -> str:
    return hashlib.sha256((ROOT / "policy.yaml").read_bytes()).hexdigest()


@pytest.fixture
def results(tmp_path: Path, policy_sha: str) -> Path:
    return sample.write_sample(tmp_path / "runs" / "run-now", policy_sha256=policy_sha)


def render(directory: Path, policy: Path | None = None) -> tuple[str, Page]:
    write_report(directory, policy)
    html = (directory / "report.html").read_text(encoding="utf-8")
    return html, Page(html)


def test_fixture_findings_follow_the_normative_schema(results: Path) -> None:
    schema = json.loads((SPEC / "findings.schema.json").read_text())
    jsonschema.validate(json.loads((results / "findings.json").read_text()), schema)


def test_every_control_has_a_section_with_its_clause_and_framework_refs(results: Path) -> None:
    _, page = render(results)
    for control in catalogue().values():
        assert f"control-{control.id}" in page.ids
        assert control.clause.text in page.visible
        for refs in control.frameworks.values():
            for ref in refs:
                assert ref in page.visible
    for label in ("PCI DSS 4.0", "SOC 2", "ISO/IEC 27001:2022", "GDPR", "AWS Config rule"):
        assert label in page.visible


def test_each_finding_shows_its_reason_and_raw_observation(results: Path) -> None:
    html, page = render(results)
    findings = json.loads((results / "findings.json").read_text())["findings"]
    rows = [attrs for tag, attrs in page.tags if tag == "tr" and "finding" in (attrs.get("class") or "")]
    assert len(rows) == len(findings)
    for finding in findings:
        assert finding["reason"] in page.visible
    observed = json.dumps(findings[0]["evidence"]["observed"], indent=2, sort_keys=True)
    assert observed.splitlines()[1].strip() in page.visible  # the raw observation, inside a <details>
    assert sum(1 for tag, attrs in page.tags if tag == "details" and "observation" in (attrs.get("class") or "")) == len(findings)


def test_no_template_leaks(results: Path) -> None:
    html, page = render(results, ROOT / "policy.yaml")
    for leak in ("{{", "}}", "{%", "None", "undefined"):
        assert leak not in html, leak
    md = (results / "report.md").read_text()
    for leak in ("{{", "{%", "None", "undefined"):
        assert leak not in md, leak


def test_summary_counts_chart_and_unsigned_banner(results: Path) -> None:
    _, page = render(results)
    summary = json.loads((results / "findings.json").read_text())["summary"]
    cells = {attrs["data-total"] for tag, attrs in page.tags if tag == "td" and "data-total" in attrs}
    assert cells == set(summary) | {"waived"}  # waived failures are counted apart (none in this sample)
    assert "summary-chart" in page.ids and "trend-chart" in page.ids
    bars = [attrs for tag, attrs in page.tags if tag == "rect" and "bar-fail" in (attrs.get("class") or "")]
    assert len(bars) == sum(1 for c in {f["control"] for f in json.loads((results / "findings.json").read_text())["findings"]
                                        if f["status"] == "fail"})
    assert "UNSIGNED" in page.visible
    assert page.visible.index("UNSIGNED") < page.visible.index("Summary")  # on the first page
    written = json.loads((results / "summary.json").read_text())
    assert written["findings"] == {**summary, "waived": 0} and written["signed"] is False


def test_retention_ledger_and_policy_sections(results: Path, policy_sha: str) -> None:
    _, page = render(results, ROOT / "policy.yaml")
    plan = json.loads((results / "retention-plan.json").read_text())
    for store in plan["stores"]:
        assert store["store"] in page.visible
        for hold in store["holds"]:
            assert hold["reason"] in page.visible and hold["until"] in page.visible
    assert "suppressed (k-anonymity)" in page.visible and "kept under hold" in page.visible
    assert "hash chain intact" in page.visible
    assert policy_sha in page.visible
    for category in ("contact", "usage_logs", "sms_consent"):
        assert category in page.visible
    assert "ip: generalize_ip" in page.visible


def test_a_policy_file_that_is_not_the_one_in_force_shows_the_hash_only(tmp_path: Path) -> None:
    directory = sample.write_sample(tmp_path / "run", policy_sha256="ab" * 32)
    _, page = render(directory, ROOT / "policy.yaml")
    assert "ab" * 32 in page.visible
    assert "is not the policy this run used" in page.visible
    assert "generalize_ip" not in page.visible


def test_trend_lists_earlier_sibling_runs_by_start_time(tmp_path: Path) -> None:
    base = datetime(2026, 10, 1, tzinfo=UTC)
    for day, name in ((3, "c-middle"), (1, "z-oldest"), (9, "a-later")):
        sample.write_sample(tmp_path / name, run_id=f"run-day{day}", started=base.replace(day=day), with_retention=False)
    current = sample.write_sample(tmp_path / "m-current", run_id="run-day5", started=base.replace(day=5), with_retention=False)
    (tmp_path / "not-a-run").mkdir()
    _, page = render(current)
    text = page.visible
    trend = text[text.index("Pass rate over runs"):] if "Pass rate over runs" in text else text[text.index("Trend"):]
    assert trend.index("run-day1") < trend.index("run-day3") < trend.index("run-day5")
    assert "run-day9" not in text  # a later run is not part of this run's history


def test_hostile_values_from_aws_render_inert(tmp_path: Path) -> None:
    directory = sample.write_sample(tmp_path / "run")
    data = json.loads((directory / "findings.json").read_text())
    first = data["findings"][0]
    first["resource"] = f"arn:aws:s3:::evil{HOSTILE}"
    first["reason"] = f"tag Owner={HOSTILE}"
    first["evidence"]["observed"] = {"Tags": {"Owner": HOSTILE}, "Policy": {"Statement": [{"Sid": HOSTILE}]}}
    (directory / "findings.json").write_text(json.dumps(data))
    plan = json.loads((directory / "retention-plan.json").read_text())
    plan["stores"][0]["holds"][0]["reason"] = HOSTILE
    (directory / "retention-plan.json").write_text(json.dumps(plan))
    html, page = render(directory)
    assert len(page.scripts) == 1 and "alert" not in page.scripts[0]  # only the report's own script
    assert not [tag for tag, _ in page.tags if tag == "img"]
    assert not [attrs for _, attrs in page.tags if any(name.startswith("on") for name in attrs)]
    assert HOSTILE in page.visible  # shown as text, for the auditor to see
    assert "&lt;script&gt;" in html
    md = (directory / "report.md").read_text()
    outside_code = "".join(md.split("```")[0::2])
    assert "<script>" not in outside_code and "\\<script\\>" in outside_code


def test_a_folder_without_findings_is_bad_input(tmp_path: Path) -> None:
    from vigil.errors import UsageError

    with pytest.raises(UsageError, match="no findings.json"):
        write_report(tmp_path)


def test_a_broken_ledger_chain_is_shown_as_broken(tmp_path: Path) -> None:
    directory = sample.write_sample(tmp_path / "run")
    lines = (directory / "ledger.jsonl").read_bytes().splitlines()
    lines[0], lines[1] = lines[1], lines[0]
    (directory / "ledger.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    _, page = render(directory)
    assert "hash chain BROKEN" in page.visible
    assert "ledger.jsonl line 1: seq is 1, expected 0" in page.visible
    assert json.loads((directory / "summary.json").read_text())["ledger"]["chain_ok"] is False


def test_a_finding_for_an_unlisted_control_still_shows(tmp_path: Path) -> None:
    directory = sample.write_sample(tmp_path / "run")
    data = json.loads((directory / "findings.json").read_text())
    data["controls"] = [c for c in data["controls"] if c["id"] != "ENC-01"]
    (directory / "findings.json").write_text(json.dumps(data))
    _, page = render(directory)
    assert "control-ENC-01" in page.ids
    assert catalogue()["ENC-01"].title in page.visible


def test_a_plan_made_under_another_policy_is_flagged(tmp_path: Path) -> None:
    directory = sample.write_sample(tmp_path / "run")
    plan = json.loads((directory / "retention-plan.json").read_text())
    plan["run"]["policy_sha256"] = "cd" * 32
    (directory / "retention-plan.json").write_text(json.dumps(plan))
    _, page = render(directory)
    assert f"this plan was made under policy SHA-256 {'cd' * 32}" in page.visible


def test_without_a_policy_flag_the_file_the_run_names_is_used(tmp_path: Path, policy_sha: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    directory = sample.write_sample(tmp_path / "run", policy_sha256=policy_sha)
    data = json.loads((directory / "findings.json").read_text())
    data["run"]["policy_file"] = str(ROOT / "policy.yaml")
    (directory / "findings.json").write_text(json.dumps(data))
    monkeypatch.chdir(tmp_path)  # no ./policy.yaml here
    _, page = render(directory)
    assert "ip: generalize_ip" in page.visible


def test_a_framework_beyond_the_five_known_is_summarised_too(tmp_path: Path) -> None:
    directory = sample.write_sample(tmp_path / "run")
    data = json.loads((directory / "findings.json").read_text())
    data["controls"][0]["frameworks"]["nist_800_53"] = ["SC-28"]
    (directory / "findings.json").write_text(json.dumps(data))
    render(directory)
    summary = json.loads((directory / "summary.json").read_text())
    assert summary["frameworks"]["nist_800_53"] == {"SC-28": summary["controls"][data["controls"][0]["id"]]}
