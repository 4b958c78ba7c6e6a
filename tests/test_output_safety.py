"""Writes never follow symbolic links out of --output (issue 15 item 3), and a bad --output,
a read-only or full disk, or --workers 0 are bad input (2) or the environment (3), never
"unexpected error" (issue 15 item 4)."""
from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from vigil.evidence import sample
from vigil.retention.ledger import Ledger

from tests.conftest import ROOT
from vigil import safe_write
from vigil.cli.main import main
from vigil.errors import EnvironmentFailure, UsageError

SECRET = "the victim file: must never change\n"


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


@pytest.mark.parametrize("name", ["report.html", "summary.json", "manifest.json", "manifest.sig"])
def test_report_refuses_a_link_planted_in_the_pack(tmp_path: Path, victim: Path, name: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    pack = sample.write_sample(tmp_path / "run")
    (pack / name).symlink_to(victim)
    code = main(["report", str(pack)])
    err = capsys.readouterr().err
    assert victim.read_text() == SECRET
    assert code == 2, err
    assert f"{name}: symbolic link or special file in the pack" in err and "unexpected" not in err


def test_check_refuses_a_linked_findings_file(moto_server_module: str, tmp_path: Path, victim: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "findings.json").symlink_to(victim)
    code = main(["check", "--policy", str(ROOT / "policy.yaml"), "--endpoint-url", moto_server_module, "--output", str(out)])
    assert code == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert victim.read_text() == SECRET


def test_manifest_writer_refuses_a_linked_manifest(tmp_path: Path, victim: Path) -> None:
    from vigil.evidence import manifest

    pack = sample.write_sample(tmp_path / "run")
    (pack / "manifest.json").symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        manifest.write(pack, "run", "0", "sha", None)
    assert victim.read_text() == SECRET


def test_ledger_and_stream_writers_refuse_links(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "ledger.jsonl").symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        Ledger(tmp_path / "ledger.jsonl", "run-1")
    (tmp_path / "actions.jsonl").symlink_to(victim)
    with pytest.raises(UsageError, match="symbolic link"):
        safe_write.open_stream(tmp_path / "actions.jsonl", "w")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "outside" / "created-through-the-link.json")
    with pytest.raises(UsageError, match="symbolic link"):
        safe_write.write_text(tmp_path / "dangling.json", "{}")
    assert victim.read_text() == SECRET
    assert not (tmp_path / "outside" / "created-through-the-link.json").exists()


def test_a_linked_subfolder_is_refused(tmp_path: Path, victim: Path) -> None:
    (tmp_path / "sub").symlink_to(victim.parent)
    with pytest.raises(UsageError, match="symbolic link"):
        sample.write_sample(tmp_path / "sub")
    assert sorted(p.name for p in victim.parent.iterdir()) == ["victim.txt"]


def test_whole_files_are_replaced_atomically_and_leave_no_temporary(tmp_path: Path) -> None:
    path = safe_write.write_text(tmp_path / "findings.json", "old")
    safe_write.write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["findings.json"]


def test_output_that_is_a_file_is_bad_input(moto_server_module: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(b"k" * 32).decode())
    out = tmp_path / "a-file"
    out.write_text("not a folder")
    code = main(["retain", "--policy", str(ROOT / "policy.yaml"), "--endpoint-url", moto_server_module, "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"--output {out}: is a file, not a folder" in err and "unexpected" not in err


@pytest.mark.parametrize("command", ["run", "schedule"])
def test_run_and_schedule_refuse_an_output_that_is_a_file(tmp_path: Path, command: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "a-file"
    out.write_text("not a folder")
    assert main([command, "--policy", str(ROOT / "policy.yaml"), "--endpoint-url", "http://127.0.0.1:9",
                 "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--output {out}: is a file, not a folder" in err and "unexpected" not in err
    assert out.read_text() == "not a folder"


@pytest.mark.parametrize("argv", [["retain"], ["subject", "find", "someone"]])
def test_workers_zero_is_bad_input(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--policy", str(ROOT / "policy.yaml"), "--workers", "0"])
    assert exited.value.code == 2
    assert "--workers: 0 is not allowed: at least 1 is needed" in capsys.readouterr().err


def test_os_errors_map_to_bad_input_or_the_environment(tmp_path: Path) -> None:
    import errno

    assert isinstance(safe_write.failure(OSError(errno.ENOSPC, "No space left on device", "x")), EnvironmentFailure)
    assert isinstance(safe_write.failure(OSError(errno.EROFS, "Read-only file system", "x")), EnvironmentFailure)
    assert isinstance(safe_write.failure(OSError(errno.ENOTDIR, "Not a directory", "x")), UsageError)


# Real full and read-only disks: a private tmpfs in a mount namespace of its own (it vanishes
# with the process). Needs unshare and the right to mount; skipped where that is not allowed.
def _in_private_tmpfs(script: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("no mount namespace here (unshare -m is not permitted)")
    mount = tmp_path / "mnt"
    mount.mkdir()
    body = textwrap.dedent(script).format(mnt=mount, py=sys.executable, root=ROOT)
    return subprocess.run(["unshare", "-m", "sh", "-ec", f"mount --make-rprivate / 2>/dev/null || true\n{body}"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_a_full_disk_is_an_environment_failure(tmp_path: Path) -> None:
    done = _in_private_tmpfs("""
        mount -t tmpfs -o size=256k tmpfs {mnt}
        {py} -c "from vigil.evidence import sample; sample.write_sample(__import__('pathlib').Path('{mnt}/run'))"
        dd if=/dev/zero of={mnt}/filler bs=4k 2>/dev/null || true
        set +e
        {py} -m vigil report {mnt}/run; echo "exit=$?"
        {py} -m vigil keys generate --out {mnt}/keys; echo "exit=$?"
        ls -a {mnt}/run {mnt}/keys
    """, tmp_path)
    assert done.stdout.count("exit=3") == 2, done.stdout + done.stderr
    assert "the disk is full" in done.stderr and "unexpected" not in done.stderr
    assert ".tmp" not in done.stdout  # no temporary file left behind
    assert "signing.key" not in done.stdout  # no orphan private key


def test_a_read_only_folder_is_an_environment_failure(tmp_path: Path) -> None:
    done = _in_private_tmpfs("""
        mount -t tmpfs -o size=1m tmpfs {mnt}
        {py} -c "from vigil.evidence import sample; sample.write_sample(__import__('pathlib').Path('{mnt}/run'))"
        mount -o remount,ro {mnt}
        set +e
        {py} -m vigil report {mnt}/run; echo "exit=$?"
        {py} -m vigil keys generate --out {mnt}/keys; echo "exit=$?"
    """, tmp_path)
    assert done.stdout.count("exit=3") == 2, done.stdout + done.stderr
    assert "read-only file system" in done.stderr.lower() and "unexpected" not in done.stderr
