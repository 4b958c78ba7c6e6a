"""Signing and verification of evidence packs: every kind of tampering is detected and exits 1."""
from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from vigil.evidence import keys, manifest, sample
from vigil.evidence.render import write_report

from vigil.cli.main import main


@pytest.fixture
def key_dir(tmp_path: Path) -> Path:
    keys.generate(tmp_path / "keys")
    return tmp_path / "keys"


@pytest.fixture
def pack(tmp_path: Path, key_dir: Path) -> Path:
    directory = sample.write_sample(tmp_path / "runs" / "run1")
    (directory / "retention-plan.actions.jsonl").write_text('{"action": "delete"}\n')  # extra files are part of the pack
    write_report(directory, None, key_dir / "signing.key")
    return directory


def verify(directory: Path, public: Path | None = None) -> int:
    argv = ["verify", str(directory)] + (["--public-key", str(public)] if public else [])
    return main(argv)


def test_generate_writes_a_private_key_only_its_owner_reads(key_dir: Path) -> None:
    mode = stat.S_IMODE((key_dir / "signing.key").stat().st_mode)
    assert mode == 0o600
    assert (key_dir / "signing.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert len(keys.load_public(key_dir / "signing.pub")) == 32


def test_generate_refuses_to_overwrite(key_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (key_dir / "signing.key").read_bytes()
    assert main(["keys", "generate", "--out", str(key_dir)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert (key_dir / "signing.key").read_bytes() == before


@pytest.mark.parametrize("occupied", ["signing.key", "signing.pub"])
@pytest.mark.parametrize("form", ["dangling link", "link to a file", "file", "folder"])
def test_generate_refuses_any_existing_name_and_leaves_nothing(tmp_path: Path, occupied: str, form: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "keys"
    out.mkdir()
    target = tmp_path / "elsewhere"
    if form == "dangling link":
        (out / occupied).symlink_to(target)
    elif form == "link to a file":
        target.write_text("someone else's")
        (out / occupied).symlink_to(target)
    elif form == "file":
        (out / occupied).write_text("old")
    else:
        (out / occupied).mkdir()
    before = sorted(p.name for p in out.iterdir())
    assert main(["keys", "generate", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite" in err and occupied in err and "unexpected" not in err
    assert sorted(p.name for p in out.iterdir()) == before  # no orphan private key, no temporary file
    assert not target.exists() or target.read_text() == "someone else's"


def test_generate_sets_both_modes_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        private, public = keys.generate(tmp_path / "keys")
    finally:
        os.umask(old)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert sorted(p.name for p in (tmp_path / "keys").iterdir()) == ["signing.key", "signing.pub"]
    old = os.umask(0o077)
    try:
        _, public = keys.generate(tmp_path / "strict")
    finally:
        os.umask(old)
    assert stat.S_IMODE(public.stat().st_mode) == 0o644  # auditors must be able to read it


def test_generate_into_a_read_only_folder_is_an_environment_failure(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores folder permissions")
    out = tmp_path / "keys"
    out.mkdir()
    out.chmod(0o500)
    try:
        assert main(["keys", "generate", "--out", str(out)]) == 3
    finally:
        out.chmod(0o700)
    assert "cannot write the keys" in capsys.readouterr().err
    assert list(out.iterdir()) == []


def test_keys_generate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "generate", "--out", str(tmp_path / "new")]) == 0
    out = capsys.readouterr().out
    assert keys.fingerprint(keys.load_public(tmp_path / "new" / "signing.pub")) in out


def test_intact_pack_verifies_with_the_signers_key(pack: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(pack, key_dir / "signing.pub") == 0
    out = capsys.readouterr().out
    assert "integrity and origin proven" in out
    listed = {entry["path"] for entry in json.loads((pack / "manifest.json").read_text())["files"]}
    assert {"findings.json", "report.html", "report.md", "summary.json", "ledger.jsonl", "retention-plan.json",
            "retention-plan.actions.jsonl"} == listed


def test_without_public_key_only_integrity_is_claimed(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(pack) == 0
    out = capsys.readouterr().out
    assert "integrity only" in out and "ORIGIN NOT PROVEN" in out
    assert "origin proven" not in out.replace("ORIGIN NOT PROVEN", "")
    result = manifest.verify_pack(pack)
    assert result.ok and result.signed and not result.origin_proven


def test_manifest_records_run_tool_policy_and_key(pack: Path, key_dir: Path) -> None:
    recorded = json.loads((pack / "manifest.json").read_text())
    findings = json.loads((pack / "findings.json").read_text())
    assert recorded["run_id"] == findings["run"]["id"]
    assert recorded["policy_sha256"] == findings["run"]["policy_sha256"]
    assert recorded["tool_version"] and recorded["created_at"]
    assert recorded["signature"]["fingerprint"] == keys.fingerprint(keys.load_public(key_dir / "signing.pub"))
    assert recorded["ledgers"][0]["lines"] == len((pack / "ledger.jsonl").read_bytes().splitlines())


@pytest.mark.parametrize("name", ["findings.json", "report.html", "report.md", "summary.json", "ledger.jsonl",
                                  "retention-plan.json", "retention-plan.actions.jsonl", "manifest.json", "manifest.sig"])
def test_one_changed_byte_in_any_file_is_detected(pack: Path, key_dir: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = pack / name
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle] = data[middle] ^ 0x01
    path.write_bytes(bytes(data))
    assert verify(pack, key_dir / "signing.pub") == 1
    assert "FAIL" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["findings.json", "report.html", "ledger.jsonl", "manifest.sig"])
def test_a_deleted_file_is_detected(pack: Path, name: str, capsys: pytest.CaptureFixture[str]) -> None:
    (pack / name).unlink()
    assert verify(pack) == 1
    assert name in capsys.readouterr().out


def test_a_deleted_manifest_is_detected(pack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (pack / "manifest.json").unlink()
    assert verify(pack) == 1
    assert "manifest.json is missing" in capsys.readouterr().out


@pytest.mark.parametrize("relative", ["extra.txt", "sub/hidden.json", ".dotfile"])
def test_an_added_file_is_detected(pack: Path, relative: str, capsys: pytest.CaptureFixture[str]) -> None:
    (pack / relative).parent.mkdir(parents=True, exist_ok=True)
    (pack / relative).write_text("{}")
    assert verify(pack) == 1
    assert f"{relative}: extra file" in capsys.readouterr().out


def _resign(pack: Path, key_dir: Path) -> None:
    """What a forger with the signing key could do: re-hash everything and sign again."""
    run = json.loads((pack / "findings.json").read_text())["run"]
    manifest.write(pack, run["id"], "0.1.0", run["policy_sha256"], keys.load_private(key_dir / "signing.key"))


def test_an_edited_ledger_line_breaks_the_chain_even_when_rehashed(pack: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = (pack / "ledger.jsonl").read_bytes().splitlines()
    entry = json.loads(lines[2])
    entry["outcome"] = "skipped"
    lines[2] = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    (pack / "ledger.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    _resign(pack, key_dir)  # digests and signature now agree: only the chain can tell
    assert verify(pack, key_dir / "signing.pub") == 1
    assert "ledger.jsonl line 4: prev does not match" in capsys.readouterr().out


def test_reordered_ledger_lines_are_detected(pack: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = (pack / "ledger.jsonl").read_bytes().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    (pack / "ledger.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    _resign(pack, key_dir)
    assert verify(pack, key_dir / "signing.pub") == 1
    out = capsys.readouterr().out
    assert "line 2: seq is 2, expected 1" in out and "chain is broken" in out


def test_a_signature_from_another_key_is_detected(pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys.generate(tmp_path / "other")
    other = keys.load_private(tmp_path / "other" / "signing.key")
    (pack / "manifest.sig").write_bytes(other.sign((pack / "manifest.json").read_bytes()))
    assert verify(pack) == 1
    assert "manifest.sig does not verify" in capsys.readouterr().out


def test_a_swapped_key_in_the_manifest_is_detected(pack: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys.generate(tmp_path / "other")
    other = keys.load_public(tmp_path / "other" / "signing.pub")
    recorded = json.loads((pack / "manifest.json").read_text())
    recorded["signature"]["public_key"] = __import__("base64").b64encode(other).decode()
    recorded["signature"]["fingerprint"] = keys.fingerprint(other)
    (pack / "manifest.json").write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    assert verify(pack) == 1
    assert "manifest.sig does not verify" in capsys.readouterr().out


def test_a_pack_resigned_by_a_forger_fails_against_the_trusted_key(pack: Path, key_dir: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    keys.generate(tmp_path / "forger")
    (pack / "findings.json").write_text((pack / "findings.json").read_text().replace('"fail"', '"pass"'))
    _resign(pack, tmp_path / "forger")
    assert verify(pack) == 0  # consistent in itself: integrity only, which is what the note says
    capsys.readouterr()
    assert verify(pack, key_dir / "signing.pub") == 1
    assert "not signed by the key you trust" in capsys.readouterr().out


def test_an_unsigned_pack_is_reported_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = sample.write_sample(tmp_path / "run")
    written = write_report(directory)
    assert not (directory / "manifest.sig").exists() and directory / "manifest.json" in written
    assert verify(directory) == 1
    assert "unsigned" in capsys.readouterr().out
    assert manifest.verify_pack(directory).files_checked == 6  # digests are still checked


def test_stripping_the_signature_is_reported_as_unsigned(pack: Path, key_dir: Path) -> None:
    (pack / "manifest.sig").unlink()
    recorded = json.loads((pack / "manifest.json").read_text())
    recorded["signature"] = None
    (pack / "manifest.json").write_text(json.dumps(recorded))
    result = manifest.verify_pack(pack, keys.load_public(key_dir / "signing.pub"))
    assert not result.ok and any("unsigned" in failure for failure in result.failures)


def test_a_path_escaping_the_pack_is_refused(pack: Path, key_dir: Path) -> None:
    recorded = json.loads((pack / "manifest.json").read_text())
    recorded["files"].append({"path": "../outside", "sha256": "0" * 64, "size": 0})
    (pack / "manifest.json").write_text(json.dumps(recorded))
    result = manifest.verify_pack(pack)
    assert any("unsafe" in failure for failure in result.failures)


def test_a_bad_public_key_file_exits_2(pack: Path, key_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert verify(pack, key_dir / "signing.key") == 2
    assert "not a PEM public key" in capsys.readouterr().err


def test_verify_of_a_missing_folder_exits_2(tmp_path: Path) -> None:
    assert verify(tmp_path / "nope") == 2


def test_verify_runs_offline_with_only_the_pack_and_the_public_key(pack: Path, key_dir: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil
    import socket

    auditor = tmp_path / "auditor"
    shutil.copytree(pack, auditor / "pack")
    shutil.copy(key_dir / "signing.pub", auditor / "signing.pub")

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("verify tried to open a network connection")

    monkeypatch.setattr(socket, "socket", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.chdir(auditor)
    assert verify(Path("pack"), Path("signing.pub")) == 0


SUCCESS_WORDS = ("OK", "proven", "verified", "valid", "pass")


@pytest.mark.parametrize("tamper", ["changed file", "added file", "missing ledger line", "wrong key"])
def test_no_success_wording_when_anything_fails(pack: Path, key_dir: Path, tmp_path: Path, tamper: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    trusted = key_dir / "signing.pub"
    if tamper == "changed file":
        (pack / "findings.json").write_text((pack / "findings.json").read_text().replace("fail", "pass", 1))
    elif tamper == "added file":
        (pack / "extra.txt").write_text("x")
    elif tamper == "missing ledger line":
        lines = (pack / "ledger.jsonl").read_bytes().splitlines(keepends=True)
        (pack / "ledger.jsonl").write_bytes(b"".join(lines[:3] + lines[4:]))
        _resign(pack, key_dir)
    else:
        keys.generate(tmp_path / "other")
        trusted = tmp_path / "other" / "signing.pub"
    for public in (trusted, None) if tamper != "wrong key" else (trusted,):
        assert verify(pack, public) == 1
        out = capsys.readouterr().out
        assert "FAIL" in out
        words = out.replace("FAILED", "").replace("FAIL", "")
        assert not [w for w in SUCCESS_WORDS if w in words], out


def test_one_missing_ledger_line_is_one_failure_naming_the_lines_it_cuts_off(tmp_path: Path, key_dir: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    entries = [{"phase": "intent", "action_id": f"a{i}", "run_id": "r"} for i in range(98)]
    lines = sample.ledger_bytes(entries).splitlines(keepends=True)
    directory = sample.write_sample(tmp_path / "run")
    (directory / "ledger.jsonl").write_bytes(b"".join(lines[:40] + lines[41:]))  # 97 lines, line 41 gone
    write_report(directory, None, key_dir / "signing.key")  # signed as it is: only the chain can tell
    assert verify(directory, key_dir / "signing.pub") == 1
    fails = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL ")]
    assert len(fails) == 1, fails
    assert "ledger.jsonl line 41" in fails[0] and "lines 41-97 (57 lines)" in fails[0]


def test_two_separate_breaks_are_two_failures() -> None:
    from vigil.evidence import chain

    lines = sample.ledger_bytes([{"n": i} for i in range(20)]).splitlines(keepends=True)
    result = chain.check_chain(b"".join(lines[:5] + lines[6:12] + lines[13:]))
    assert [f.split(":")[0] for f in result.failures] == ["ledger.jsonl line 6", "ledger.jsonl line 12"]


@pytest.mark.parametrize("kind", ["folder link", "file link", "dangling link", "linked signature"])
def test_a_symlink_in_a_pack_fails_verification(pack: Path, key_dir: Path, tmp_path: Path, kind: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "credentials").write_text("aws_secret_access_key = hunter2\n")
    if kind == "folder link":
        (pack / "more").symlink_to(secrets_dir)
        name = "more"
    elif kind == "file link":
        (pack / "notes.txt").symlink_to(secrets_dir / "credentials")
        name = "notes.txt"
    elif kind == "dangling link":
        (pack / "gone.txt").symlink_to(tmp_path / "nowhere")
        name = "gone.txt"
    else:
        real = pack / "manifest.sig"
        moved = secrets_dir / "manifest.sig"
        moved.write_bytes(real.read_bytes())
        real.unlink()
        real.symlink_to(moved)  # the same bytes, through a link
        name = "manifest.sig"
    assert verify(pack, key_dir / "signing.pub") == 1
    out = capsys.readouterr().out
    assert f"FAIL  {name}: a symbolic link in the pack" in out
    assert "hunter2" not in out


def test_report_refuses_to_sign_a_pack_holding_a_link(tmp_path: Path, key_dir: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    directory = sample.write_sample(tmp_path / "run")
    (tmp_path / "secret").write_text("hunter2")
    (directory / "evil").symlink_to(tmp_path / "secret")
    assert main(["report", str(directory), "--signing-key", str(key_dir / "signing.key")]) == 2
    assert "evil: symbolic link or special file in the pack" in capsys.readouterr().err
    assert not (directory / "manifest.json").exists() and not (directory / "report.html").exists()
