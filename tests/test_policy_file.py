"""The policy file: the spec's example loads exactly; every bad file is exit 2 with file:line:key."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, SHARED_SPEC, SPEC
from vigil.cli.main import main
from vigil.policy import Duration, PolicyError, load_policy

SPEC_TEXT = (ROOT / "policy.yaml").read_text()


@pytest.mark.skipif(not SHARED_SPEC.is_dir(), reason="../shared/spec is not beside this clone")
def test_vendored_spec_matches_the_shared_contract() -> None:
    for name in ("policy.yaml", "findings.schema.json", "cli.md", "controls.md"):
        assert (SPEC / name).read_bytes() == (SHARED_SPEC / name).read_bytes(), name


SUBJECT_MAPPINGS = {"subject_from_key", "subject_field", "subject_attribute"}


def test_repository_policy_is_the_spec_example_plus_subject_mappings_and_loads() -> None:
    """The repository's policy is the spec's example with only subject mappings added (so subject
    requests search every store): every other key, every store and every value of the spec is there as is."""
    spec, repo = yaml.safe_load((SPEC / "policy.yaml").read_text()), yaml.safe_load(SPEC_TEXT)
    assert {k: v for k, v in repo.items() if k != "stores"} == {k: v for k, v in spec.items() if k != "stores"}
    assert [s["name"] for s in repo["stores"]] == [s["name"] for s in spec["stores"]]
    for mine, theirs in zip(repo["stores"], spec["stores"], strict=True):
        assert {k: v for k, v in mine.items() if k in theirs} == theirs, mine["name"]
        assert set(mine) - set(theirs) <= SUBJECT_MAPPINGS, mine["name"]
        assert set(mine) & SUBJECT_MAPPINGS, f"{mine['name']}: no subject mapping, subject answers would be incomplete"
    load_policy(SPEC / "policy.yaml")  # the spec's example itself still loads exactly
    policy = load_policy(ROOT / "policy.yaml")
    assert policy.organization == "Example Telecom"
    assert policy.regions.backup == "us-west-2"
    assert [s.name for s in policy.stores] == ["contacts", "billing", "web-logs", "call-records", "consent", "referrals", "subscribers"]
    assert policy.categories["usage_logs"].verify.k == 5
    assert str(policy.categories["call_history"].anonymize["card_number"]) == "mask:4"
    assert policy.categories["aggregates"].retain.forever
    assert len(policy.sha256) == 64


@pytest.mark.parametrize("text,days", [("P90D", 90), ("P18M", 540), ("P2Y", 730), ("PT12H", 1), ("P1W", 7), ("P1Y2M3DT4H", 365 + 60 + 3 + 1)])
def test_durations(text: str, days: int) -> None:
    assert Duration.parse(text).approx_days() == days


def test_calendar_arithmetic_clamps_month_ends() -> None:
    start = datetime(2024, 1, 31, tzinfo=UTC)
    assert Duration.parse("P1M").after(start) == datetime(2024, 2, 29, tzinfo=UTC)
    assert Duration.parse("P2Y").before(datetime(2026, 3, 1, tzinfo=UTC)) == datetime(2024, 3, 1, tzinfo=UTC)


def _edit(old: str, new: str) -> str:
    assert old in SPEC_TEXT, old
    return SPEC_TEXT.replace(old, new, 1)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# (name, file text, expected "line-anchor" substring (or line number), expected key path, words in message)
BAD = [
    ("unknown top-level key", SPEC_TEXT + "colour: blue\n", "colour: blue", "colour", "unknown key"),
    ("unknown key in regions", _edit("  allowed: [us-east-1, us-west-2]", "  allowed: [us-east-1, us-west-2]\n  tertiary: eu-west-1"), "tertiary", "regions.tertiary", "unknown key"),
    ("unknown key in category", _edit("    retain: P90D\n", "    retain: P90D\n    ttl: 3\n"), "ttl: 3", "categories.usage_logs.ttl", "unknown key"),
    ("unknown key in store", _edit("    layout: jsonl ", "    layuot: jsonl "), "layuot", "stores[2].layuot", "unknown key"),
    ("unknown key in verify", _edit("      k: 5 ", "      kk: 5 "), "kk: 5", "categories.usage_logs.verify.kk", "unknown key"),
    ("unknown key in subjects", _edit("  closed_at: closed_at ", "  closed: closed_at "), "  closed: closed_at", "subjects.closed", "unknown key"),
    ("bad duration", _edit("retain: P90D", "retain: P90X"), "retain: P90X", "categories.usage_logs.retain", "'P90X' is not an ISO 8601 duration"),
    ("bad grace", _edit("grace: P7D", "grace: 7 days"), "grace: 7 days", "grace", "not an ISO 8601 duration"),
    ("numeric duration", _edit("retain: P7Y", "retain: 7"), "retain: 7\n", "categories.billing.retain", "ISO 8601"),
    ("unknown transform", _edit("user_agent: drop", "user_agent: scramble"), "user_agent: scramble", "categories.usage_logs.anonymize.user_agent", "unknown transform"),
    ("bad mask", _edit("mask:4", "mask:four"), "mask:four", "categories.call_history.anonymize.card_number", "mask"),
    ("bad truncate", _edit("truncate_time:hour", "truncate_time:minute"), "truncate_time:minute", "categories.call_history.anonymize.started_at", "truncate_time"),
    ("backup equals primary", _edit("backup: us-west-2 ", "backup: us-east-1 "), "backup: us-east-1", "regions.backup", "primary"),
    ("backup not allowed", _edit("  allowed: [us-east-1, us-west-2]", "  allowed: [us-east-1]"), "backup: us-west-2", "regions.backup", "not in regions.allowed"),
    ("unknown category", _edit("    category: billing\n", "    category: invoices\n"), "category: invoices", "stores[1].category", "unknown category 'invoices'"),
    ("keep_at_least longer than retain", _edit("keep_at_least: P4Y", "keep_at_least: P6Y"), "keep_at_least: P6Y", "categories.sms_consent.keep_at_least", "longer than retain"),
    ("anonymize with delete", _edit("    action: anonymize\n    anonymize:\n      caller:", "    action: delete\n    anonymize:\n      caller:"), "    anonymize:\n      caller:", "categories.call_history.anonymize", "only allowed with 'action: anonymize'"),
    ("quasi identifier not a field", _edit("quasi_identifiers: [ip, ts]", "quasi_identifiers: [ip, country]"), "quasi_identifiers: [ip, country]", "categories.usage_logs.verify.quasi_identifiers[1]", "'country' is not a field"),
    ("after without subjects", SPEC_TEXT.split("subjects:\n  # where")[0] + "stores:" + SPEC_TEXT.split("\nstores:", 1)[1], "after: account_closed  ", "categories.contact.after", "subjects"),
    ("bad action", _edit("    action: delete\n    basis: Tax", "    action: shred\n    basis: Tax"), "action: shred", "categories.billing.action", "'shred' is not allowed"),
    ("wrong type for allowed", _edit("  allowed: [us-east-1, us-west-2]", "  allowed: us-east-1"), "allowed: us-east-1", "regions.allowed", "list"),
    ("unknown store kind", _edit("    kind: dynamodb\n    table: referrals", "    kind: mongodb\n    table: referrals"), "  - name: referrals", "stores[5]", "unknown store kind"),
    ("bad region name", _edit("primary: us-east-1", "primary: Virginia"), "primary: Virginia", "regions.primary", "not an AWS region"),
    ("wrong version", _edit("version: 1", "version: 2"), "version: 2", "version", "not allowed"),
    ("missing required key", _edit("organization: Example Telecom\n", ""), "version: 1", "organization", "required key is missing"),
    ("duplicate key", _edit("grace: P7D", "grace: P7D\ngrace: P8D"), "grace: P8D", "grace", "duplicate key"),
    ("bad schedule phrase", _edit("check: every 6 hours", "check: twice a day"), "check: twice a day", "schedule.check", "schedule phrase"),
    ("jsonl without timestamp field", _edit("    layout: jsonl                # records inside objects (.gz read and written transparently)\n    timestamp_field: ts\n", "    layout: jsonl\n"), "  - name: web-logs", "stores[2].timestamp_field", "required for layout 'jsonl'"),
    ("duplicate store name", _edit("  - name: billing\n", "  - name: contacts\n"), "  - name: contacts\n    kind: s3\n    bucket: example-billing", "stores[1].name", "more than once"),
    ("bad hold date", SPEC_TEXT + "holds:\n  - reason: litigation\n    subjects: [acct-1]\n    until: 2026-13-45\n", "    until: 2026-13-45", "holds[0].until", "valid date"),
    ("unknown key in a key source", _edit("{source: env, name: VIGIL_PSEUDONYM_KEY}", "{source: env, name: VIGIL_PSEUDONYM_KEY, colour: red}"), "pseudonymize: {source: env", "keys.pseudonymize.colour", "unknown key"),
    ("store without kind", _edit("  - name: billing\n    kind: s3\n", "  - name: billing\n"), "  - name: billing", "stores[1]", "'kind' is missing"),
    ("tab indentation", _edit("version: 1", "version:\t1\n\tfoo: 1"), None, "(top level)", "YAML syntax error"),
    ("yaml syntax error", _edit("allowed: [us-east-1, us-west-2]", "allowed: [us-east-1, us-west-2"), None, "(top level)", "YAML syntax error"),
    ("empty file", "", 1, "(top level)", "empty"),
    ("not a mapping", "- a\n- b\n", 1, "(top level)", "mapping"),
]


@pytest.mark.parametrize("name,text,anchor,key,words", BAD, ids=[b[0] for b in BAD])
def test_bad_policy_files_name_file_line_and_key(tmp_path: Path, capsys: pytest.CaptureFixture, name: str, text: str, anchor, key: str, words: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    code = main(["check", "--policy", str(path), "--validate-only"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    if isinstance(anchor, str):
        line = _line_of(text, anchor.split("\n")[0]) if "\n" not in anchor else text[: text.index(anchor)].count("\n") + 1 + anchor.split("\n").index(next(ln for ln in anchor.split("\n") if key.split(".")[-1].split("[")[0] in ln))
        expected = f"{path}:{line}: {key}: "
        assert expected in err, f"{expected!r} not in {err!r}"
    elif isinstance(anchor, int):
        assert f"{path}:{anchor}: {key}: " in err, err
    else:
        assert f"{path}:" in err and key in err
    assert words in err, err


def test_missing_policy_file_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["check", "--policy", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read the policy file" in capsys.readouterr().err


def test_policy_validate_command_and_no_traceback_in_a_real_process(tmp_path: Path) -> None:
    good = subprocess.run([sys.executable, "-m", "vigil", "policy", "validate", str(ROOT / "policy.yaml")], capture_output=True, text=True)
    assert good.returncode == 0 and "valid" in good.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(_edit("retain: P90D", "retain: P90X"))
    result = subprocess.run([sys.executable, "-m", "vigil", "policy", "validate", str(bad)], capture_output=True, text=True)
    assert result.returncode == 2
    assert f"{bad}:{_line_of(bad.read_text(), 'retain: P90X')}: categories.usage_logs.retain: 'P90X' is not an ISO 8601 duration" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_policy_changes_nothing_and_never_reaches_aws(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(_edit("retain: P90D", "retain: P90X"))
    out = tmp_path / "out"
    # the endpoint is unreachable: if the policy were not rejected first this would be exit 3
    assert main(["check", "--policy", str(bad), "--endpoint-url", "http://127.0.0.1:9", "--output", str(out)]) == 2
    assert not out.exists()


def test_policy_error_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(_edit("retain: P90D", "retain: P90X").replace("grace: P7D", "grace: soon"))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert len(caught.value.issues) == 2
