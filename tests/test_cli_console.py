"""The console of `vigil check` and `vigil controls`: summary tables, root causes, filters, fail thresholds,
baselines, width and highlighting, progress hooks and each command's own help. Against a seeded
loopback moto estate (three deliberate failures plus one declared bucket that is missing)."""
from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import boto3
import pytest
from vigil.checks.catalogue import catalogue

from tests.conftest import ROOT, loopback_moto
from tests.helpers import repo_policy
from vigil import progress
from vigil.cli import console
from vigil.cli.main import main

MISSING = "example-call-records"
ENV = (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1"),
       ("AWS_CONFIG_FILE", "/dev/null"), ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"))


@pytest.fixture(scope="module")
def estate():
    from tests.test_e2e_check import seed

    with loopback_moto() as endpoint, pytest.MonkeyPatch.context() as env:
        for name, value in ENV:
            env.setenv(name, value)
        env.setenv("AWS_ENDPOINT_URL", endpoint)
        seed(repo_policy())
        s3 = boto3.client("s3")
        listing = s3.list_object_versions(Bucket=MISSING)
        for version in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
            s3.delete_object(Bucket=MISSING, Key=version["Key"], VersionId=version["VersionId"])
        s3.delete_bucket(Bucket=MISSING)
        env.delenv("AWS_ENDPOINT_URL")
        env.delenv("COLUMNS", raising=False)
        yield endpoint


def vigil(endpoint: str, out: Path, *args: str) -> tuple[int, str, dict]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["check", "--policy", str(ROOT / "policy.yaml"), "--endpoint-url", endpoint, "--output", str(out), *args])
    path = out / "findings.json"
    return code, buffer.getvalue(), json.loads(path.read_text()) if path.exists() else {}


def test_summary_tables_root_causes_and_files_written_last(estate: str, tmp_path: Path) -> None:
    code, text, data = vigil(estate, tmp_path / "all")
    assert code == 1
    assert "Findings by severity" in text and "Findings by service" in text
    for severity in ("critical", "high", "medium"):
        assert re.search(rf"│ {severity}\s+│", text)
    for service in ("s3", "iam", "dynamodb"):
        assert re.search(rf"│ {service}\s+│", text)
    # the missing bucket: one cause, its controls listed, its reason said once
    missing = [f for f in data["findings"] if f["resource"] == f"arn:aws:s3:::{MISSING}" and f["status"] == "fail"]
    assert len(missing) >= 5
    line = next(line for line in text.splitlines() if f"arn:aws:s3:::{MISSING}: " in line)
    assert f"{len(missing)} control(s) " + ", ".join(sorted({f["control"] for f in missing})) in line
    assert text.count(missing[0]["reason"]) == 1
    causes = re.findall(r"^\d+\. (fail|error) ", text, re.M)
    problems = [f for f in data["findings"] if f["status"] in ("fail", "error")]
    assert len(causes) < len(problems)  # grouped, not one line per finding
    assert text.rstrip().splitlines()[-1] == f"findings: {tmp_path / 'all' / 'findings.json'}"


def test_filters_select_controls_and_record_the_rest_as_not_evaluated(estate: str, tmp_path: Path) -> None:
    code, text, data = vigil(estate, tmp_path / "f", "--severity", "critical", "--service", "iam,s3", "--skip-control", "MFA-03")
    wanted = {c.id for c in catalogue().values() if c.severity == "critical" and {"iam", "s3"} & set(c.services)} - {"MFA-03"}
    assert {f["control"] for f in data["findings"]} == wanted
    skipped = {entry["control"]: entry["reason"] for entry in data["not_evaluated"]}
    assert set(skipped) == set(catalogue()) - wanted
    assert skipped["MFA-03"] == "skipped (--skip-control)"
    assert all("not selected" in reason for cid, reason in skipped.items() if cid != "MFA-03")
    assert f"{len(skipped)} control(s) not evaluated" in text
    _, _, framework = vigil(estate, tmp_path / "g", "--framework", "gdpr")
    assert {f["control"] for f in framework["findings"]} == {c.id for c in catalogue().values() if c.frameworks.get("gdpr")}


def test_status_and_verbose_decide_what_is_shown_not_what_is_judged(estate: str, tmp_path: Path) -> None:
    _, default, data = vigil(estate, tmp_path / "a")
    passing = next(f for f in data["findings"] if f["status"] == "pass")
    assert passing["reason"] not in default
    _, verbose, _ = vigil(estate, tmp_path / "b", "--verbose")
    assert passing["reason"] in verbose
    code, errors_only, again = vigil(estate, tmp_path / "c", "--status", "error")
    assert code == 1 and len(again["findings"]) == len(data["findings"])  # everything is still judged
    assert re.findall(r"^\d+\. (\w+) ", errors_only, re.M) and set(re.findall(r"^\d+\. (\w+) ", errors_only, re.M)) == {"error"}
    _, quiet, _ = vigil(estate, tmp_path / "d", "-q")
    assert "Findings by severity" not in quiet and "findings: " in quiet and " pass, " in quiet


def test_fail_on_makes_the_exit_code_depend_on_severity(estate: str, tmp_path: Path) -> None:
    assert vigil(estate, tmp_path / "a", "--fail-on", "critical")[0] == 1  # the root user has no MFA (MFA-01, critical)
    code, text, _ = vigil(estate, tmp_path / "b", "--fail-on", "critical", "--skip-control", "MFA-01")
    assert code == 0 and "exit 0: 0 unwaived fail/error finding(s) severity critical or worse" in text
    assert vigil(estate, tmp_path / "c", "--fail-on", "medium", "--skip-control", "MFA-01")[0] == 1


def test_baseline_fails_only_on_new_findings(estate: str, tmp_path: Path) -> None:
    _, _, first = vigil(estate, tmp_path / "first")
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(first))
    code, text, _ = vigil(estate, tmp_path / "same", "--baseline", str(baseline))
    assert code == 0 and " new" not in text.replace("new since", "")
    tls = next(f for f in first["findings"] if f["control"] == "TLS-01" and f["status"] == "fail")
    older = {**first, "findings": [f for f in first["findings"] if f is not tls]}
    baseline.write_text(json.dumps(older))
    code, text, _ = vigil(estate, tmp_path / "new", "--baseline", str(baseline))
    assert code == 1 and "1 new" in text and "exit 1: 1 unwaived fail/error finding(s) new since the baseline" in text


@pytest.mark.parametrize("args, message", [
    (["--severity", "urgent"], "unknown severity urgent"),
    (["--service", "lambda"], "unknown service lambda"),
    (["--framework", "hipaa"], "unknown framework hipaa"),
    (["--skip-control", "XYZ-99"], "unknown control id XYZ-99"),
    (["--status", "broken"], "--status broken: unknown"),
    (["--baseline", "/nonexistent/findings.json"], "--baseline /nonexistent/findings.json: no such file"),
])
def test_bad_filter_values_are_bad_input(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check", "--policy", str(ROOT / "policy.yaml"), "--endpoint-url", "http://127.0.0.1:9", "--output",
                 str(tmp_path / "out"), *args])
    assert code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "out" / "findings.json").exists()


def test_piped_tables_keep_arns_whole_at_any_width(estate: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    _, text, data = vigil(estate, tmp_path / "narrow", "--verbose")
    for finding in data["findings"]:
        assert finding["resource"] in text, finding["resource"]  # never split across lines


def test_one_width_policy_and_no_highlighter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    assert console.make_console().width == console.PIPED_WIDTH  # stdout is not a terminal under pytest
    monkeypatch.setenv("COLUMNS", "123")
    assert console.make_console().width == 123
    monkeypatch.setenv("FORCE_COLOR", "1")
    shown = console.make_console()
    with shown.capture() as captured:
        shown.print("ENC-01 us-east-1 arn:aws:s3:::b 2027-01-03")
    assert "\x1b[" not in captured.get()  # the highlighter would colour the digits and the ARN


def test_progress_reports_phases_done_and_total(estate: str, tmp_path: Path) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.phases: list[list] = []

        def phase(self, name: str, total: int | None = None) -> None:
            self.phases.append([name, total, 0])

        def advance(self, amount: int = 1, total: int | None = None) -> None:
            self.phases[-1][2] += amount

    recorder = Recorder()
    with progress.reporting(recorder):
        vigil(estate, tmp_path / "p", "-q")
    names = [name for name, _, _ in recorder.phases]
    assert any(name.startswith("reading 8 AWS services") for name in names) and "evaluating controls" in names
    for name, total, done in recorder.phases:
        if total is not None:
            assert done == total, (name, done, total)


def test_progress_is_not_drawn_off_a_terminal_or_with_quiet() -> None:
    with console.live_progress(quiet=False):
        assert progress._current is None  # stderr is not a TTY under pytest
    with console.live_progress(quiet=True):
        assert progress._current is None


@pytest.mark.parametrize("argv, usage", [
    (["check", "-q", "--help"], "usage: vigil check "),
    (["controls", "show", "--help"], "usage: vigil controls show "),
    (["controls", "--help"], "usage: vigil controls "),
])
def test_each_command_shows_its_own_help(argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(argv)
    assert done.value.code == 0 and capsys.readouterr().out.startswith(usage)


def test_a_stray_argument_is_reported_with_the_subcommand_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["controls", "show", "TLS-01", "--bogus"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.startswith("usage: vigil controls show") and "unrecognized arguments: --bogus" in err


def test_controls_take_the_same_filters_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["controls", "--severity", "critical,high", "--service", "s3", "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    expected = [c.id for c in catalogue().values() if c.severity in ("critical", "high") and "s3" in c.services]
    assert [c["id"] for c in listed] == expected and all("services" in c for c in listed)
    assert main(["controls", "list", "--framework", "gdpr", "--skip-control", "ENC-01", "--format", "json"]) == 0
    ids = [c["id"] for c in json.loads(capsys.readouterr().out)]
    assert "ENC-01" not in ids and ids == [c.id for c in catalogue().values() if c.frameworks.get("gdpr") and c.id != "ENC-01"]
    assert main(["controls", "show", "tls-01"]) == 0 and "TLS-01" in capsys.readouterr().out
    assert main(["controls", "--severity", "urgent"]) == 2




def test_log_level_turns_on_logging_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    root = logging.getLogger()
    before = list(root.handlers), root.level
    try:
        console.configure_logging(None)
        assert root.handlers == before[0]  # default: untouched, so JSON logs on stderr stay JSON
        console.configure_logging("debug")
        logging.getLogger("vigil.test").debug("hello from debug")
        assert "DEBUG vigil.test: hello from debug" in capsys.readouterr().err
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])


def test_controls_status_comes_from_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    findings = tmp_path / "findings.json"
    waiver = {"reason": "r", "owner": "o", "approval": "a", "expires": "2099-01-01"}
    findings.write_text(json.dumps({"findings": [
        {"control": "TLS-01", "resource": "arn:aws:s3:::a", "status": "pass"},
        {"control": "TLS-01", "resource": "arn:aws:s3:::b", "status": "fail"},
        {"control": "MFA-02", "resource": "arn:aws:iam::1:user/x", "status": "fail", "waived": waiver},
        {"control": "ENC-01", "resource": "arn:aws:s3:::a", "status": "pass"}]}))
    assert main(["controls", "--findings", str(findings), "--status", "fail,waived", "--format", "json"]) == 0
    assert [(c["id"], c["status"]) for c in json.loads(capsys.readouterr().out)] == [("TLS-01", "fail"), ("MFA-02", "waived")]
    assert main(["controls", "--findings", str(findings), "--status", "not_evaluated", "--format", "json"]) == 0
    listed = {c["id"] for c in json.loads(capsys.readouterr().out)}
    assert listed == set(catalogue()) - {"TLS-01", "MFA-02", "ENC-01"}
    assert main(["controls", "--status", "fail"]) == 2
    assert "--status needs --findings" in capsys.readouterr().err
    assert main(["controls", "--findings", str(tmp_path / "missing.json")]) == 2
