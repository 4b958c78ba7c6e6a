"""`vigil report`: exit codes, key sources (file, env, KMS), and upload to an Object-Lock bucket (moto)."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from moto import mock_aws
from vigil.evidence import keys, manifest, sample
from vigil.evidence.render import write_report
from vigil.evidence.upload import upload_pack
from vigil.retention.keys import load_keys

from tests.conftest import ROOT
from vigil.cli.main import main
from vigil.errors import UsageError
from vigil.policy import load_policy


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    keys.generate(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    return sample.write_sample(tmp_path / "runs" / "20261101T020000Z-a1b2c3")


def test_report_writes_the_pack_and_it_verifies(results: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(results), "--signing-key", str(key_dir / "signing.key")]) == 0
    for name in ("report.html", "report.md", "summary.json", "manifest.json", "manifest.sig"):
        assert (results / name).is_file(), name
    assert "signed with key file signing.key" in capsys.readouterr().out
    assert main(["verify", str(results), "--public-key", str(key_dir / "signing.pub")]) == 0


def test_signing_key_from_the_environment(results: Path, key_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keys.ENV_VAR, str(key_dir / "signing.key"))
    assert main(["report", str(results)]) == 0
    assert manifest.verify_pack(results, keys.load_public(key_dir / "signing.pub")).origin_proven


def test_rerendering_unsigned_removes_a_stale_signature(results: Path, key_dir: Path) -> None:
    write_report(results, None, key_dir / "signing.key")
    assert (results / "manifest.sig").exists()
    assert main(["report", str(results)]) == 0
    assert not (results / "manifest.sig").exists()
    assert "is not signed" in (results / "report.html").read_text()


def test_folder_without_findings_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "no findings.json" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("content", [b"not a key", None])
def test_bad_key_file_exits_2_and_writes_nothing(results: Path, tmp_path: Path, content: bytes | None) -> None:
    bad = tmp_path / "bad.key"
    if content is not None:
        bad.write_bytes(content)
    before = sorted(p.name for p in results.iterdir())
    assert main(["report", str(results), "--signing-key", str(bad)]) == 2
    assert sorted(p.name for p in results.iterdir()) == before


class FakeKms:
    """The KMS side of Sign/GetPublicKey for an ECC_NIST_EDWARDS25519 key, answered through botocore's
    before-call event (moto has no Ed25519 keys); the request is serialized exactly as for AWS."""

    def __init__(self, client, private: keys.FileSigner, key_id: str) -> None:
        self.private, self.key_id, self.requests = private, key_id, []
        client.meta.events.register("before-call.kms.*", self.answer)

    def answer(self, model, params, **_):
        request = json.loads(params["body"])
        self.requests.append((model.name, request))
        if model.name == "GetPublicKey":
            der = self.private.key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            return SimpleNamespace(status_code=200), {"KeyId": self.key_id, "PublicKey": der, "KeySpec": "ECC_NIST_EDWARDS25519"}
        assert model.name == "Sign" and request["SigningAlgorithm"] == "ED25519_SHA_512" and request["MessageType"] == "RAW"
        signature = self.private.sign(base64.b64decode(request["Message"]))
        return SimpleNamespace(status_code=200), {"KeyId": self.key_id, "Signature": signature, "SigningAlgorithm": "ED25519_SHA_512"}


def test_kms_signer_signs_with_ed25519_over_the_raw_manifest(results: Path, key_dir: Path) -> None:
    client = boto3.client("kms", region_name="us-east-1")
    key_id = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    kms = FakeKms(client, keys.load_private(key_dir / "signing.key"), key_id)
    write_report(results, None, keys.load_signer(f"kms:{key_id}", kms_client=lambda: client))
    assert [name for name, _ in kms.requests] == ["GetPublicKey", "Sign"]
    assert base64.b64decode(kms.requests[1][1]["Message"]) == (results / "manifest.json").read_bytes()
    result = manifest.verify_pack(results, keys.load_public(key_dir / "signing.pub"))
    assert result.ok and result.origin_proven
    assert "AWS KMS key" in json.loads((results / "manifest.json").read_text())["signature"]["signer"]


def test_kms_key_spec_from_the_command_line(results: Path) -> None:
    assert main(["report", str(results), "--signing-key", "kms:"]) == 2


@mock_aws
def test_upload_locks_every_file_in_compliance_mode(results: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="example-evidence", ObjectLockEnabledForBucket=True)
    code = main(["report", str(results), "--signing-key", str(key_dir / "signing.key"),
                 "--upload", "s3://example-evidence/packs", "--retain-days", "30", "--region", "us-east-1"])
    assert code == 0, capsys.readouterr()
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket="example-evidence")["Contents"]}
    expected = {f"packs/{results.name}/{p.name}" for p in results.iterdir()}
    assert listed == expected
    soon = datetime.now(UTC) + timedelta(days=30)
    for key in listed:
        head = s3.head_object(Bucket="example-evidence", Key=key)
        assert head["ObjectLockMode"] == "COMPLIANCE"
        assert abs((head["ObjectLockRetainUntilDate"] - soon).total_seconds()) < 600
    signature_key = f"packs/{results.name}/manifest.sig"
    version = s3.head_object(Bucket="example-evidence", Key=signature_key)["VersionId"]
    with pytest.raises(ClientError):  # locked evidence cannot be deleted
        s3.delete_object(Bucket="example-evidence", Key=signature_key, VersionId=version)
    body = s3.get_object(Bucket="example-evidence", Key=signature_key)["Body"].read()
    assert body == (results / "manifest.sig").read_bytes()


@mock_aws
def test_upload_refuses_a_bucket_without_object_lock(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="plain-bucket")
    write_report(results)
    with pytest.raises(Exception, match="does not have Object Lock enabled"):
        upload_pack(results, "s3://plain-bucket/x", s3)
    assert "Contents" not in s3.list_objects_v2(Bucket="plain-bucket")
    assert main(["report", str(results), "--upload", "s3://plain-bucket/x", "--region", "us-east-1"]) == 3


def test_upload_destination_must_be_s3_and_locked_for_a_day_at_least(results: Path) -> None:
    assert main(["report", str(results), "--upload", "https://example.com/x"]) == 2
    assert main(["report", str(results), "--upload", "s3://bucket/x", "--retain-days", "0"]) == 2
    assert not (results / "report.html").exists()  # refused before anything was written


def test_a_signing_key_inside_the_pack_is_refused(results: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys.generate(results / "keys")
    assert main(["report", str(results), "--signing-key", str(results / "keys" / "signing.key")]) == 2
    assert "inside the pack" in capsys.readouterr().err
    assert not (results / "manifest.json").exists()


def test_screenshot_never_replaces_an_existing_file_unless_asked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vigil.evidence import screenshot

    target = tmp_path / "report.png"
    target.write_bytes(b"tracked picture")
    assert screenshot.main(["--out", str(target)]) == 2
    assert target.read_bytes() == b"tracked picture"
    assert "--overwrite" in capsys.readouterr().err
    assert (screenshot.ROOT / "docs" / "report.png").is_file()
    assert screenshot.main([]) == 2  # the default target is the tracked docs/report.png: kept


@mock_aws
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_upload_refuses_a_pack_holding_a_link_and_sends_nothing(results: Path, tmp_path: Path, kind: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="example-evidence", ObjectLockEnabledForBucket=True)
    write_report(results)
    secret = tmp_path / "home" / ".aws"
    secret.mkdir(parents=True)
    (secret / "credentials").write_text("aws_secret_access_key = hunter2\n")
    (results / "extra").symlink_to(secret if kind == "folder" else secret / "credentials")
    with pytest.raises(UsageError, match="extra: symbolic link"):
        upload_pack(results, "s3://example-evidence/packs", s3)
    assert s3.list_objects_v2(Bucket="example-evidence").get("KeyCount") == 0


HELD = ("acct-HELD-0001", "acct-HELD-0002")


def _policy_with_holds(tmp_path: Path) -> Path:
    text = (ROOT / "policy.yaml").read_text()
    path = tmp_path / "policy-with-holds.yaml"
    path.write_text(text.rstrip("\n") + "\n\n# legal team, ticket LEG-7\nholds:\n"
                    f"  - reason: \"Litigation hold\"\n    subjects: [{HELD[0]}, \"{HELD[1]}\"]\n")
    return path


def test_report_copies_the_policy_with_hold_subjects_as_keyed_hashes(tmp_path: Path, key_dir: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(b"p" * 32).decode())
    policy_path = _policy_with_holds(tmp_path)
    original_sha = hashlib.sha256(policy_path.read_bytes()).hexdigest()
    pack = sample.write_sample(tmp_path / "run", policy_sha256=original_sha)
    assert main(["report", str(pack), "--policy", str(policy_path), "--signing-key", str(key_dir / "signing.key")]) == 0
    copy = (pack / "policy-in-force.yaml").read_text()
    hashed = [load_keys(load_policy(policy_path)).hash(subject) for subject in HELD]
    assert load_policy(pack / "policy-in-force.yaml").holds[0].subjects == hashed  # the ledger's keyed hashes
    expected = policy_path.read_text().replace(f'[{HELD[0]}, "{HELD[1]}"]', f'["{hashed[0]}", "{hashed[1]}"]')
    assert copy.endswith(expected)  # everything else byte for byte, comments included
    assert f"SHA-256 of the original file: {original_sha}" in copy
    for path in pack.rglob("*"):  # no raw subject id anywhere in the pack
        if path.is_file():
            assert not any(subject.encode() in path.read_bytes() for subject in HELD), path.name
    assert json.loads((pack / "manifest.json").read_text())["policy_sha256"] == original_sha
    assert "policy-in-force.yaml" in {entry["path"] for entry in json.loads((pack / "manifest.json").read_text())["files"]}
    for report in ("report.html", "report.md"):
        text = (pack / report).read_text()
        assert "keyed hashes" in text and "original file" in text, report
    assert manifest.verify_pack(pack, keys.load_public(key_dir / "signing.pub")).origin_proven


def test_without_the_evidence_key_hold_subjects_are_withheld(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_PSEUDONYM_KEY", raising=False)
    policy_path = _policy_with_holds(tmp_path)
    pack = sample.write_sample(tmp_path / "run", policy_sha256=hashlib.sha256(policy_path.read_bytes()).hexdigest())
    assert main(["report", str(pack), "--policy", str(policy_path)]) == 0
    copy = (pack / "policy-in-force.yaml").read_text()
    assert not any(subject in copy for subject in HELD)
    assert 'subjects: ["withheld", "withheld"]' in copy
    assert "withheld" in (pack / "report.md").read_text()


def test_no_copy_of_a_policy_that_is_not_the_one_in_force(results: Path, tmp_path: Path) -> None:
    (results / "policy-in-force.yaml").write_text("stale copy from an earlier report")
    assert main(["report", str(results), "--policy", str(_policy_with_holds(tmp_path))]) == 0
    assert not (results / "policy-in-force.yaml").exists()
    assert "not in this pack" in (results / "report.md").read_text()
