"""`vigil run` end to end against a loopback moto server: files written and exit codes."""
from __future__ import annotations

import base64
import contextlib
import io
import json
import socket
from pathlib import Path

import boto3
import pytest

from tests.aging import YEAR, written_ago
from vigil.cli.main import main
from vigil.scheduler.metrics import read_samples

ROOT = Path(__file__).resolve().parent.parent
POLICY = str(ROOT / "policy.yaml")
FAKE_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "VIGIL_PSEUDONYM_KEY": base64.b64encode(b"k" * 32).decode()}
BILLING = "example-billing"  # a store of the repository policy: P7Y, delete


@pytest.fixture(scope="module")
def endpoint(moto_server_module: str) -> str:
    return moto_server_module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def vigil(*argv: str) -> tuple[int, str]:
    """Run the CLI in-process; returns (exit code, what it wrote to stderr)."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(list(argv))
    return code, err.getvalue()


def s3(endpoint: str):
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def seed_old_billing(endpoint: str, count: int = 3) -> None:
    """Objects that are past the billing category's seven years when evaluated --as-of 2040."""
    client = s3(endpoint)
    if BILLING not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BILLING)
    with written_ago(8 * YEAR):
        for i in range(count):
            client.put_object(Bucket=BILLING, Key=f"invoices/{i}.json", Body=b'{"total": 1}')


def billing_keys(endpoint: str) -> list[str]:
    return [o["Key"] for o in s3(endpoint).list_objects_v2(Bucket=BILLING).get("Contents", [])]


@pytest.fixture(scope="module")
def signed_run(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One signed, uploaded dry-run `vigil run` with JSON logs and metrics, shared by the assertions below."""
    base = tmp_path_factory.mktemp("signed")
    seed_old_billing(endpoint)
    s3(endpoint).create_bucket(Bucket="vigil-evidence", ObjectLockEnabledForBucket=True)
    with pytest.MonkeyPatch.context() as env:
        for name, value in FAKE_ENV.items():
            env.setenv(name, value)
        env.delenv("VIGIL_SIGNING_KEY", raising=False)
        assert vigil("keys", "generate", "--out", str(base / "keys"))[0] == 0
        key = ["--signing-key", str(base / "keys" / "signing.key")]
        code, log = vigil("run", "--policy", POLICY, "--endpoint-url", endpoint, "--region", "us-east-1",
                          "--output", str(base / "out"), "--log-format", "json",
                          "--metrics-file", str(base / "vigil.prom"), "--as-of", "2040-01-01",
                          "--upload", "s3://vigil-evidence/packs", *key)
    uploaded = [o["Key"] for o in s3(endpoint).list_objects_v2(Bucket="vigil-evidence").get("Contents", [])]
    return {"code": code, "log": log, "dir": base / "out", "metrics": base / "vigil.prom", "signed": bool(key),
            "billing_after": billing_keys(endpoint), "uploaded": uploaded}


def test_run_writes_one_folder_and_exits_with_the_worst_stage(signed_run: dict) -> None:
    record = json.loads((signed_run["dir"] / "run.json").read_text())
    assert (signed_run["dir"] / "findings.json").is_file()
    codes = [s["exit_code"] for s in record["stages"] if s["exit_code"] is not None]
    assert record["stages"][0]["stage"] == "check" and codes, record
    summary = json.loads(signed_run["log"].splitlines()[-1])
    assert summary["event"] == "run.finished"
    assert summary["exit_code"] == signed_run["code"] == max(summary["stages"][s] for s in summary["stages"]
                                                            if isinstance(summary["stages"][s], int))
    # The check against an empty account fails controls: that is exit 1, and the later stages still ran.
    findings = json.loads((signed_run["dir"] / "findings.json").read_text())
    assert findings["summary"]["fail"] > 0 and signed_run["code"] >= 1
    assert summary["findings"] == findings["summary"]


def test_a_failed_check_still_gets_a_report_and_the_pack_verifies(signed_run: dict) -> None:
    assert (signed_run["dir"] / "report.html").is_file() and (signed_run["dir"] / "manifest.json").is_file()
    manifest = json.loads((signed_run["dir"] / "manifest.json").read_text())
    assert "run.json" in json.dumps(manifest), "run.json is written before the report, so the pack covers it"
    summary = json.loads(signed_run["log"].splitlines()[-1])
    assert summary["stages"]["report"] == 0
    assert signed_run["signed"]
    assert summary["stages"]["verify"] == 0
    assert vigil("verify", str(signed_run["dir"]))[0] == 0  # an auditor's verify later agrees


def test_without_apply_retention_only_plans(signed_run: dict) -> None:
    assert (signed_run["dir"] / "retention-plan.json").is_file()
    assert len(signed_run["billing_after"]) == 3, "a dry run deletes nothing"
    assert not json.loads(signed_run["log"].splitlines()[-1])["retention"]


def test_the_report_uploads_the_pack_when_configured(signed_run: dict) -> None:
    names = {key.rsplit("/", 1)[-1] for key in signed_run["uploaded"]}
    assert {"manifest.json", "report.html", "findings.json", "run.json"} <= names
    assert all(key.startswith("packs/") for key in signed_run["uploaded"])


def test_apply_deletes_what_is_past_retention_and_counts_it(endpoint: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", FAKE_ENV["VIGIL_PSEUDONYM_KEY"])
    seed_old_billing(endpoint)
    code, _ = vigil("run", "--policy", POLICY, "--endpoint-url", endpoint, "--region", "us-east-1", "--apply",
                    "--output", str(tmp_path / "out"), "--metrics-file", str(tmp_path / "m.prom"))
    assert billing_keys(endpoint) == []
    assert (tmp_path / "out" / "ledger.jsonl").is_file()
    assert read_samples(tmp_path / "m.prom")[("vigil_retention_actions_total", '{action="deleted"}')] == 3
    record = json.loads((tmp_path / "out" / "run.json").read_text())
    assert record["apply"] is True and record["retention"] == {"deleted": 3}
    assert code == max(s["exit_code"] for s in record["stages"] if s["exit_code"] is not None)


def test_json_logs_are_one_event_per_line_without_stage_chatter(signed_run: dict) -> None:
    events = [json.loads(line) for line in signed_run["log"].splitlines()]
    names = [e["event"] for e in events]
    assert names[0] == "run.started" and names[-1] == "run.finished"
    assert {"stage.started", "stage.finished"} <= set(names)
    assert all({"ts", "level", "event"} <= set(e) for e in events)
    assert "subject" not in signed_run["log"] and "contacts/" not in signed_run["log"]


def test_metrics_textfile_counts_the_run(signed_run: dict) -> None:
    samples = read_samples(signed_run["metrics"])
    assert samples[("vigil_runs_total", f'{{exit_code="{signed_run["code"]}",job="run"}}')] == 1
    findings = json.loads((signed_run["dir"] / "findings.json").read_text())["summary"]
    assert samples[("vigil_findings_total", '{status="fail"}')] == findings["fail"]
    assert samples[("vigil_last_run_exit_code", '{job="run"}')] == signed_run["code"]
    assert "# TYPE vigil_runs_total counter" in signed_run["metrics"].read_text()


def test_unreachable_endpoint_stops_the_run_at_the_first_stage(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    metrics = tmp_path / "m.prom"
    for attempt in (1, 2):
        out = tmp_path / f"out{attempt}"
        code, _ = vigil("run", "--policy", POLICY, "--endpoint-url", dead, "--output", str(out),
                        "--metrics-file", str(metrics), "--log-format", "json")
        assert code == 3
        record = json.loads((out / "run.json").read_text())
        assert record["stages"][0] == {**record["stages"][0], "stage": "check", "exit_code": 3}
        assert all(s["exit_code"] is None for s in record["stages"][1:])
        assert not (out / "report.html").exists() and not (out / "retention-plan.json").exists()
    # Counters add up across separate processes' runs (cron starts a new one each time).
    assert read_samples(metrics)[("vigil_runs_total", '{exit_code="3",job="run"}')] == 2


def test_bad_as_of_is_bad_input_and_nothing_else_runs(tmp_path: Path) -> None:
    """The job parses --as-of once, before any stage: bad input is exit 2 before any folder is made."""
    code, err = vigil("run", "--policy", POLICY, "--as-of", "not-a-date", "--output", str(tmp_path / "o"))
    assert code == 2 and "--as-of 'not-a-date'" in err
    assert not (tmp_path / "o").exists()


def test_bad_policy_exits_2_before_any_folder_is_made(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text((ROOT / "policy.yaml").read_text().replace("check: every 6 hours", "check: every blue moon"))
    code, err = vigil("run", "--policy", str(bad), "--output", str(tmp_path / "o"))
    assert code == 2 and "schedule.check" in err
    assert not (tmp_path / "o").exists()


def test_bad_upload_location_is_bad_input(tmp_path: Path) -> None:
    code, err = vigil("run", "--policy", POLICY, "--upload", "ftp://x/y", "--output", str(tmp_path / "o"))
    assert code == 2 and "s3://" in err


def test_every_job_option_reaches_its_stage_typed(tmp_path: Path) -> None:
    """Stages get typed options, not argv: the as-of instant, the deletion cap and apply reach retain
    (no flag can be silently dropped), and only the stages that may change data are told to apply."""
    from datetime import UTC, datetime

    from vigil.scheduler.pipeline import STAGES, JobOptions, stage_call
    from vigil.stages.retain import RetainOptions, retain

    as_of = datetime(2040, 1, 1, tzinfo=UTC)
    options = JobOptions(policy="p.yaml", endpoint_url="http://127.0.0.1:1", regions=("eu-west-1",), profile="audit",
                         as_of=as_of, apply=True, max_delete=5, signing_key="kms:alias/k", upload="s3://b/p")
    function, retain_options = stage_call("retain", options, tmp_path)
    assert function is retain and retain_options == RetainOptions(
        policy="p.yaml", endpoint_url="http://127.0.0.1:1", regions=("eu-west-1",), profile="audit", as_of=as_of,
        output=tmp_path, apply=True, max_delete=5)
    for stage in {s for stages in STAGES.values() for s in stages}:
        _, stage_options = stage_call(stage, options, tmp_path)
        if hasattr(stage_options, "as_of"):
            assert stage_options.as_of == as_of and stage_options.output == tmp_path, stage
        assert getattr(stage_options, "apply", True) is True, stage  # apply is never lost on the way
    _, report_options = stage_call("report", options, tmp_path)
    assert (report_options.signing_key, report_options.upload, report_options.profile) == ("kms:alias/k", "s3://b/p", "audit")


def test_an_unwritable_metrics_file_is_logged_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    dead = f"http://127.0.0.1:{free_port()}"
    code, log = vigil("run", "--policy", POLICY, "--endpoint-url", dead, "--output", str(tmp_path / "o"),
                      "--metrics-file", str(blocker / "vigil.prom"), "--log-format", "json")
    assert code == 3  # the run's own result, not the metrics' failure
    assert [e for e in map(json.loads, log.splitlines()) if e["event"] == "metrics.failed"]
