"""`vigil run` / `vigil schedule` verify their own pack against the job's key, so it proves origin
(issue 14 item 8): --public-key, else the public half of the key the report signed with; never
the key recorded in the pack."""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from vigil.evidence import keys, sample
from vigil.evidence.render import write_report

from tests.conftest import ROOT
from vigil.cli.main import main
from vigil.cli.verify import show
from vigil.scheduler.pipeline import JobOptions, stage_call


@pytest.fixture
def signed_pack(tmp_path: Path) -> tuple[Path, Path]:
    keys.generate(tmp_path / "keys")
    pack = sample.write_sample(tmp_path / "run")
    write_report(pack, None, tmp_path / "keys" / "signing.key")
    return pack, tmp_path / "keys"


def _verify_stage(options: JobOptions, pack: Path):
    function, stage_options = stage_call("verify", options, pack)
    return function(stage_options)


def test_the_jobs_verify_proves_origin_with_the_public_half_of_its_signing_key(signed_pack: tuple[Path, Path]) -> None:
    pack, key_dir = signed_pack
    outcome = _verify_stage(JobOptions(signing_key=str(key_dir / "signing.key")), pack)
    assert outcome.exit_code == 0 and outcome.result.origin_proven
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        show(outcome)
    assert "integrity and origin proven" in printed.getvalue() and "NOT PROVEN" not in printed.getvalue()


def test_the_jobs_verify_uses_the_public_key_it_is_given(signed_pack: tuple[Path, Path]) -> None:
    pack, key_dir = signed_pack
    outcome = _verify_stage(JobOptions(public_key=str(key_dir / "signing.pub")), pack)
    assert outcome.exit_code == 0 and outcome.result.origin_proven


def test_a_pack_re_signed_with_another_key_fails_the_jobs_verify(signed_pack: tuple[Path, Path], tmp_path: Path) -> None:
    pack, key_dir = signed_pack
    keys.generate(tmp_path / "forger")
    write_report(pack, None, tmp_path / "forger" / "signing.key")  # consistent, signed, by someone else
    outcome = _verify_stage(JobOptions(signing_key=str(key_dir / "signing.key")), pack)
    assert outcome.exit_code == 1 and not outcome.result.origin_proven
    assert any("not signed by the key you trust" in f for f in outcome.result.failures)


@pytest.mark.parametrize("command", ["run", "schedule"])
def test_run_and_schedule_take_public_key_and_refuse_a_bad_one(command: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "signing.pub"
    bad.write_text("not a key")
    assert main([command, "--policy", str(ROOT / "policy.yaml"), "--public-key", str(bad),
                 "--output", str(tmp_path / "out")]) == 2
    assert f"public key {bad}: not a PEM public key" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
