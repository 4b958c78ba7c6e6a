"""Remediation: one card per control, filled in per finding, shown by `vigil controls show`."""
from __future__ import annotations

import re
from string import Template

import pytest
from vigil.checks.catalogue import catalogue
from vigil.checks.model import Evidence, Finding, Status
from vigil.checks.remediation import RESOURCE_KINDS, for_control, for_finding, remediations

from tests.helpers import repo_policy
from vigil.cli.main import main

KNOWN = set(RESOURCE_KINDS) | {"resource", "region", "account", "primary_region", "backup_region", "kms_key_arn"}


def _placeholders(text: str) -> set[str]:
    return {m.group("braced") or m.group("named") for m in Template.pattern.finditer(text)} - {None}


def test_every_control_has_a_complete_card() -> None:
    assert set(remediations()) == set(catalogue()), "every control of the catalogue carries its remediation card"
    for control_id, fix in remediations().items():
        assert len(fix.summary.split()) >= 25, f"{control_id}: the summary should be a real paragraph"
        assert fix.cli and all(re.match(r"^(aws |vigil |# )", c) for c in fix.cli), (control_id, fix.cli)
        assert fix.pulumi.strip(), control_id
        used = set().union(*(_placeholders(t) for t in (fix.summary, fix.pulumi, *fix.cli)))
        assert used <= KNOWN, f"{control_id}: unknown placeholders {used - KNOWN}"


def _finding(control: str, resource: str, region: str = "us-east-1") -> Finding:
    return Finding(control, resource, region, Status.FAIL, "broken", Evidence("x", None))


def test_the_failing_resource_is_filled_in() -> None:
    policy = repo_policy()
    fix = for_finding(_finding("TLS-01", "arn:aws:s3:::example-billing"), policy, "123456789012")
    assert any("put-bucket-policy --bucket example-billing " in c for c in fix.cli)
    assert '"arn:aws:s3:::example-billing/*"' in " ".join(fix.cli)
    assert 'SecureBucket("example-billing"' in fix.pulumi
    assert "<bucket>" not in " ".join(fix.cli)

    replication = for_finding(_finding("BAK-02", "arn:aws:s3:::example-contacts"), policy, "123456789012")
    assert any(f"--region {policy.regions.backup}" in c for c in replication.cli)
    assert "arn:aws:iam::123456789012:role/vigil-replication" in " ".join(replication.cli)

    user = for_finding(_finding("MFA-02", "arn:aws:iam::123456789012:user/alice", ""), policy)
    assert "--user-name alice" in " ".join(user.cli) and "arn:aws:iam::123456789012:mfa/alice" in " ".join(user.cli)


def test_commands_for_another_kind_of_resource_are_left_out() -> None:
    table = "arn:aws:dynamodb:eu-west-1:123456789012:table/referrals"
    fix = for_finding(_finding("BAK-05", table, "eu-west-1"))
    assert fix.cli == ("aws dynamodb update-continuous-backups --table-name referrals --region eu-west-1 "
                       "--point-in-time-recovery-specification PointInTimeRecoveryEnabled=true",)
    on_bucket = for_finding(_finding("ENC-02", "arn:aws:s3:::example-contacts"))
    assert not any("dynamodb" in c for c in on_bucket.cli) and any("--bucket example-contacts" in c for c in on_bucket.cli)


def test_unknown_values_are_shown_as_what_to_supply() -> None:
    card = for_control("ENC-03")
    assert any("--key-id <key-id>" in c for c in card.cli)
    filled = for_finding(_finding("ENC-03", "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab", "us-west-2"))
    assert "aws kms enable-key-rotation --key-id 1234abcd-12ab --region us-west-2" in filled.cli


@pytest.mark.parametrize("control_id", ["TLS-01", "ret-04"])
def test_controls_show_prints_the_full_card(control_id: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["controls", "show", control_id]) == 0
    out = capsys.readouterr().out
    control = catalogue()[control_id.upper()]
    assert control.clause.text.split()[0] in out and control.passes.split()[0] in out
    for framework in control.frameworks:
        assert framework in out
    fix = for_control(control.id)
    assert "how to fix" in out and fix.cli[0] in out and fix.pulumi.splitlines()[0] in out


def test_controls_show_unknown_id_is_exit_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["controls", "show", "XYZ-99"]) == 2
    assert "unknown control id" in capsys.readouterr().err
