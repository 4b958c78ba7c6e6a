"""Waivers: validated in the policy file (file:line:key), applied to findings, reported with their state."""
from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml
from vigil.checks.catalogue import catalogue
from vigil.checks.model import Evidence, Finding, Status
from vigil.checks.waivers import apply_waivers, load_checked_policy

from tests.conftest import ROOT, SPEC
from vigil.cli.main import main
from vigil.policy import PolicyError, load_policy
from vigil.policy.models import Waiver
from vigil.policy.rules import waiver_horizon

TODAY = datetime.now(UTC).date()


def write_policy(tmp_path: Path, waivers: list[dict]) -> Path:
    """The repository policy with a `waivers:` section appended as YAML text (real line numbers)."""
    text = (ROOT / "policy.yaml").read_text() + "\n" + yaml.safe_dump({"waivers": waivers}, sort_keys=False)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


def waiver(**change) -> dict:
    base = {"control": "TLS-02", "resource": "arn:aws:s3:::example-*", "reason": "migrating to the new bucket policy",
            "owner": "security@example.com", "approval": "CHG-1234", "expires": (TODAY + timedelta(days=30)).isoformat()}
    base.update(change)
    return base


def second_waiver_line(path: Path, key: str) -> int:
    """1-based line of `key:` inside the second waiver of the appended section."""
    lines = path.read_text().splitlines()
    starts = [i for i in range(lines.index("waivers:"), len(lines)) if lines[i].startswith("- ")]
    return next(i + 1 for i in range(starts[1], len(lines)) if lines[i].lstrip("- ").startswith(f"{key}:"))


def test_a_valid_waiver_loads(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, [waiver()]))
    assert policy.waivers[0].control == "TLS-02"
    assert policy.waivers[0].expires == TODAY + timedelta(days=30)


def test_an_expired_waiver_loads_fine(tmp_path: Path) -> None:
    policy = load_policy(write_policy(tmp_path, [waiver(expires=(TODAY - timedelta(days=1)).isoformat())]))
    assert policy.waivers[0].expires < TODAY


@pytest.mark.parametrize("change,key,message", [
    ({"control": "XYZ-99"}, "control", "unknown control id 'XYZ-99'"),
    ({"expires": "TOO_FAR"}, "expires", "more than one year ahead"),
    ({"expires": "next year"}, "expires", "date"),
    ({"owner": ""}, "owner", "at least 1 character"),
    ({"colour": "red"}, "colour", "unknown key"),
])
def test_bad_waivers_name_file_line_and_key(tmp_path: Path, change: dict, key: str, message: str) -> None:
    if change.get("expires") == "TOO_FAR":
        change = {"expires": (waiver_horizon(TODAY) + timedelta(days=1)).isoformat()}
    path = write_policy(tmp_path, [waiver(), waiver(**change)])
    with pytest.raises(PolicyError) as caught:
        load_checked_policy(path)  # the policy loader with the checks layer's rule (waivers name catalogued controls)
    text = str(caught.value)
    assert f"{path}:{second_waiver_line(path, key)}: waivers[1].{key}: " in text, text
    assert message in text, text


def test_a_waiver_without_expiry_is_refused(tmp_path: Path) -> None:
    entry = waiver()
    del entry["expires"]
    path = write_policy(tmp_path, [entry])
    with pytest.raises(PolicyError, match=r"waivers\[0\]\.expires: required key is missing"):
        load_policy(path)


def test_the_one_year_horizon_is_inclusive(tmp_path: Path) -> None:
    load_policy(write_policy(tmp_path, [waiver(expires=waiver_horizon(TODAY).isoformat())]))
    assert waiver_horizon(date(2028, 2, 29)) == date(2029, 2, 28)


def _finding(control: str, resource: str, status: Status) -> Finding:
    return Finding(control, resource, "us-east-1", status, f"{control} on {resource}", Evidence("s3:GetBucketPolicy", None))


def test_apply_waivers_states_and_globs() -> None:
    findings = [
        _finding("TLS-02", "arn:aws:s3:::example-billing", Status.FAIL),
        _finding("TLS-02", "arn:aws:s3:::example-contacts", Status.ERROR),
        _finding("TLS-02", "arn:aws:s3:::other", Status.FAIL),
        _finding("ENC-01", "arn:aws:s3:::example-billing", Status.PASS),
        _finding("BAK-05", "arn:aws:dynamodb:us-east-1:123456789012:table/referrals", Status.FAIL),
    ]
    in_a_month = TODAY + timedelta(days=30)
    waivers = [
        Waiver(control="TLS-02", resource="arn:aws:s3:::example-*", reason="r", owner="o", approval="a", expires=in_a_month),
        Waiver(control="ENC-01", resource="arn:aws:s3:::example-billing", reason="r", owner="o", approval="a", expires=in_a_month),
        Waiver(control="BAK-05", resource="arn:aws:dynamodb:*:table/referrals", reason="r", owner="o", approval="a",
               expires=TODAY - timedelta(days=1)),
        Waiver(control="BAK-05", resource="arn:aws:dynamodb:*:table/referrals", reason="r", owner="o", approval="a", expires=TODAY),
    ]
    waived, states = apply_waivers(waivers, findings, TODAY)
    assert set(waived) == {("TLS-02", "arn:aws:s3:::example-billing"), ("TLS-02", "arn:aws:s3:::example-contacts"),
                           ("BAK-05", "arn:aws:dynamodb:us-east-1:123456789012:table/referrals")}
    assert waived[("BAK-05", "arn:aws:dynamodb:us-east-1:123456789012:table/referrals")] is waivers[3]  # not the expired one
    assert [s.state for s in states] == ["active", "stale", "expired", "active"]  # a passing finding is not waived
    assert states[0].matches == ("arn:aws:s3:::example-billing", "arn:aws:s3:::example-contacts")
    assert states[2].matches == ("arn:aws:dynamodb:us-east-1:123456789012:table/referrals",)


def reset_moto(endpoint: str) -> None:
    """In-process moto servers share one state: start from (and leave) an empty account; the
    builders' cached boto3 clients may point at an earlier server, so they are made anew."""
    import urllib.request

    from tests.builders_s3 import client

    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"), timeout=10).close()
    client.cache_clear()


@pytest.fixture(scope="module")
def empty_account_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """`vigil check` on an empty moto account (every declared store missing: TLS-02 fails on each)."""
    from moto.server import ThreadedMotoServer

    tmp = tmp_path_factory.mktemp("waivers")
    policy = write_policy(tmp, [
        waiver(),  # active: the example-* buckets are missing, so TLS-02 fails on them
        waiver(control="ENC-05", resource="arn:aws:rds:*"),  # stale: there are no databases
        waiver(control="BAK-01", resource="*", expires=(TODAY - timedelta(days=3)).isoformat()),  # expired
    ])
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    reset_moto(f"http://{host}:{port}")
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                                ("AWS_CONFIG_FILE", "/dev/null"), ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")):
                env.setenv(name, value)
            code = main(["check", "--policy", str(policy), "--endpoint-url", f"http://{host}:{port}", "--output", str(tmp / "out")])
    finally:
        reset_moto(f"http://{host}:{port}")
        server.stop()
    assert code == 1  # other controls still fail
    return tmp, json.loads((tmp / "out" / "findings.json").read_text())


def test_waived_findings_keep_their_status_and_carry_the_waiver(empty_account_run: tuple[Path, dict]) -> None:
    _, data = empty_account_run
    jsonschema.validate(data, json.loads((SPEC / "findings.schema.json").read_text()))
    tls = [f for f in data["findings"] if f["control"] == "TLS-02"]
    assert tls and all(f["status"] == "fail" for f in tls)
    for f in tls:
        assert f["waived"] == {"reason": "migrating to the new bucket policy", "owner": "security@example.com",
                               "approval": "CHG-1234", "expires": (TODAY + timedelta(days=30)).isoformat()}
    assert not [f for f in data["findings"] if f["control"] == "BAK-01" and "waived" in f], "an expired waiver waives nothing"
    counted = {status: sum(1 for f in data["findings"] if f["status"] == status) for status in data["summary"]}
    assert data["summary"] == counted, "summary counts keep real statuses"


def test_waivers_are_reported_with_their_state(empty_account_run: tuple[Path, dict]) -> None:
    _, data = empty_account_run
    states = {(w["control"], w["state"]) for w in data["waivers"]}
    assert states == {("TLS-02", "active"), ("ENC-05", "stale"), ("BAK-01", "expired")}
    active = next(w for w in data["waivers"] if w["state"] == "active")
    assert active["policy_key"] == "waivers[0]" and active["owner"] == "security@example.com"
    assert sorted(active["matches"]) == sorted(f["resource"] for f in data["findings"] if f["control"] == "TLS-02")
    expired = next(w for w in data["waivers"] if w["state"] == "expired")
    assert expired["matches"], "an expired waiver says which failures it no longer covers"


def test_waiving_every_failure_exits_0(tmp_path: Path, moto_server: str, capsys: pytest.CaptureFixture) -> None:
    policy = write_policy(tmp_path, [waiver(control=cid, resource="*") for cid in catalogue()])
    reset_moto(moto_server)
    code = main(["check", "--policy", str(policy), "--endpoint-url", moto_server, "--output", str(tmp_path / "out")])
    data = json.loads((tmp_path / "out" / "findings.json").read_text())
    problems = [f for f in data["findings"] if f["status"] in ("fail", "error")]
    assert problems and all("waived" in f for f in problems)
    assert data["summary"]["fail"] == sum(1 for f in problems if f["status"] == "fail")
    assert code == 0
    out = capsys.readouterr().out
    assert "waived" in out and "Waivers" in out
