"""CSV, OCSF and ASFF from a real `vigil check` (the e2e estate of test_formats), checked against what
their consumers accept:

* OCSF: tests/ocsf/detection_finding-1.1.0.schema.json, a JSON Schema derived from the published
  OCSF schema definitions (ocsf/ocsf-schema tag v1.1.0) by tests/ocsf/build_schema.py (provenance there);
* ASFF: botocore's own model of Security Hub's BatchImportFindings (the AwsSecurityFinding shape,
  its required members and types), plus the documented length limits;
* CSV: parsed back with the csv module, one row per finding, no cell a spreadsheet would run.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import botocore.session
import jsonschema
from botocore.validate import ParamValidator
from vigil.checks.formats.asff import resource_type, to_asff
from vigil.checks.formats.csvfile import COLUMNS, to_csv
from vigil.checks.formats.ocsf import to_ocsf

from tests.test_formats import run  # noqa: F401  (the module-scoped check of the seeded estate)

OCSF_SCHEMA = json.loads((Path(__file__).parent / "ocsf" / "detection_finding-1.1.0.schema.json").read_text())


def _key(data: dict, finding: dict) -> tuple[str, str]:
    return finding["control"], finding["resource"]


def test_ocsf_events_validate_against_the_published_class(run: dict) -> None:  # noqa: F811
    events = json.loads((run["dir"] / "findings.ocsf.json").read_text())
    findings = run["findings"]["findings"]
    assert len(events) == len(findings)
    validator = jsonschema.Draft202012Validator(OCSF_SCHEMA)
    for event in events:
        errors = sorted(validator.iter_errors(event), key=str)
        assert not errors, [e.message for e in errors[:5]]
    by_resource = {(e["metadata"]["event_code"], e["resources"][0]["uid"]): e for e in events}
    for finding in findings:
        event = by_resource[_key(run["findings"], finding)]
        assert event["status_code"] == finding["status"].upper() and event["message"] == finding["reason"]
        assert event["class_uid"] == 2004 and event["type_uid"] == 200401
    waived = [e for e in events if e["status"] == "Suppressed"]
    assert [(e["metadata"]["event_code"], e["status_code"], e["unmapped"]["waiver"]["owner"]) for e in waived] == \
        [("BAK-05", "FAIL", "dba@example.com")]
    failing = [e for e in events if e["status_code"] == "FAIL"]
    assert all(e["severity"] in ("High", "Medium", "Critical", "Low") and e["remediation"]["desc"] for e in failing)


def test_ocsf_schema_refuses_what_consumers_would_refuse(run: dict) -> None:  # noqa: F811
    """The derived schema has teeth: a wrong class, a missing required attribute or an unknown one fail."""
    event = json.loads((run["dir"] / "findings.ocsf.json").read_text())[0]
    validator = jsonschema.Draft202012Validator(OCSF_SCHEMA)
    for broken in ({**event, "class_uid": 2001}, {k: v for k, v in event.items() if k != "finding_info"},
                   {**event, "colour": "red"}, {**event, "metadata": {**event["metadata"], "product": None}},
                   {**event, "severity_id": 7}):
        assert list(validator.iter_errors(broken))


def test_asff_findings_are_what_security_hub_batch_import_accepts(run: dict) -> None:  # noqa: F811
    findings = json.loads((run["dir"] / "findings.asff.json").read_text())
    assert len(findings) == len(run["findings"]["findings"])
    model = botocore.session.get_session().get_service_model("securityhub")
    shape = model.operation_model("BatchImportFindings").input_shape
    for start in range(0, len(findings), 100):  # the API takes 100 findings a call
        report = ParamValidator().validate({"Findings": findings[start:start + 100]}, shape)
        assert not report.has_errors(), report.generate_report()
    for item in findings:
        assert len(item["Title"]) <= 256 and len(item["Description"]) <= 1024
        assert all(t.count("/") in (1, 2) for t in item["Types"])  # namespace/category[/classifier]
        assert item["Severity"]["Label"] in ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")
        assert item["ProductArn"].endswith(f":product/{item['AwsAccountId']}/default")
        assert len(item.get("Compliance", {}).get("RelatedRequirements", [])) <= 32
    statuses = {(f["ProductFields"]["vigil/Control"], f["Resources"][0]["Id"]): f for f in findings}
    waived = statuses[("BAK-05", "arn:aws:dynamodb:us-east-1:123456789012:table/referrals")]
    assert waived["Compliance"]["Status"] == "FAILED" and waived["Workflow"]["Status"] == "SUPPRESSED"
    assert "PITR returns with the table migration" in waived["Note"]["Text"]
    assert waived["Resources"][0]["Type"] == "AwsDynamoDbTable"


def test_asff_resource_types() -> None:
    assert resource_type("arn:aws:s3:::example-contacts") == "AwsS3Bucket"
    assert resource_type("arn:aws:iam::123456789012:user/alice") == "AwsIamUser"
    assert resource_type("arn:aws:kms:us-east-1:123456789012:key/1234") == "AwsKmsKey"
    assert resource_type("arn:aws:backup:us-east-1:123456789012:backup-vault:v") == "AwsBackupBackupVault"
    assert resource_type("123456789012") == "AwsAccount"
    assert resource_type("region:us-east-1") == "Other"


def test_csv_has_one_row_per_finding_and_the_waiver(run: dict) -> None:  # noqa: F811
    rows = list(csv.DictReader(io.StringIO((run["dir"] / "findings.csv").read_text(), newline="")))
    assert list(rows[0]) == list(COLUMNS)
    assert len(rows) == len(run["findings"]["findings"])
    waived = [r for r in rows if r["MUTED"] == "true"]
    assert [(r["CHECK_ID"], r["STATUS"], r["WAIVER_OWNER"], r["WAIVER_APPROVAL"]) for r in waived] == \
        [("BAK-05", "FAIL", "dba@example.com", "CHG-42")]
    assert {r["SERVICE_NAME"] for r in rows} >= {"s3", "dynamodb", "iam"}


def test_csv_never_writes_a_cell_a_spreadsheet_would_run() -> None:
    data = {"run": {"id": "r", "account": "123456789012", "finished_at": "2026-11-01T00:00:00Z"},
            "controls": [{"id": "ENC-01", "title": "t", "severity": "high", "frameworks": {}}],
            "findings": [{"control": "ENC-01", "resource": "arn:aws:s3:::b", "region": "us-east-1", "status": "fail",
                          "reason": '=HYPERLINK("http://evil.invalid","x")', "evidence": {"api": "s3:X", "observed": None}}]}
    row = list(csv.reader(io.StringIO(to_csv(data))))[1]
    assert row[COLUMNS.index("STATUS_EXTENDED")] == '\'=HYPERLINK("http://evil.invalid","x")'


def test_every_format_reads_the_same_findings_document(run: dict) -> None:  # noqa: F811
    data = run["findings"]
    assert to_ocsf(data) == json.loads((run["dir"] / "findings.ocsf.json").read_text())
    assert to_asff(data) == json.loads((run["dir"] / "findings.asff.json").read_text())


def test_html_from_check_is_the_report_with_its_first_page(run: dict) -> None:  # noqa: F811
    html = (run["dir"] / "report.html").read_text()
    assert "At a glance" in html and "UNSIGNED" in html
    assert "PITR returns with the table migration" in html  # the waiver, on the first page
