"""`pulumi up` runs the program with `main:` (infra/) as its working directory, so the policy
file named in the stack's config is found relative to the project root (the folder holding
Pulumi.yaml), not to the working directory. The program runs here under Pulumi's mocks the
way the engine starts it: `runpy.run_path` of the program folder, with that folder as cwd.
"""
from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pulumi
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2_grpc
from vigil.infra.mocks import RecordingMocks, run_program
from vigil.infra.settings import project_root

from tests.conftest import ROOT


@pytest.fixture
def config() -> Iterator[dict[str, str]]:
    values: dict[str, str] = {}
    yield values
    pulumi.runtime.set_all_config({})


def _run_as_the_engine_does(program_dir: Path, config: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> RecordingMocks:
    pulumi.runtime.set_all_config(config)
    monkeypatch.chdir(program_dir)  # the language host's --pwd: the `main:` folder
    mocks = RecordingMocks("us-east-1")
    run_program(mocks, lambda: runpy.run_path(str(program_dir), run_name="__main__"))
    return mocks


def _buckets(mocks: RecordingMocks) -> set[str]:
    return {r.id for r in mocks.resources if r.type == "aws:s3/bucket:Bucket"}


def test_repository_program_finds_policy_yaml_from_infra(config: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    config.update({"vigil:policyFile": "policy.yaml", "vigil:namePrefix": "acme"})  # as Pulumi.dev.yaml and the README set it
    mocks = _run_as_the_engine_does(ROOT / "infra", config, monkeypatch)
    assert {"example-contacts", "acme-evidence"} <= _buckets(mocks)


def test_default_policy_file_is_the_one_beside_pulumi_yaml(config: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    mocks = _run_as_the_engine_does(ROOT / "infra", config, monkeypatch)  # no vigil:policyFile at all
    assert "example-telecom-evidence" in _buckets(mocks)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project laid out like the repository, with its policy file in a sub-folder under another name."""
    shutil.copy(ROOT / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    (tmp_path / "infra" / "policy_pack").mkdir(parents=True)
    shutil.copy(ROOT / "infra" / "__main__.py", tmp_path / "infra" / "__main__.py")
    shutil.copy(ROOT / "infra" / "policy_pack" / "__main__.py", tmp_path / "infra" / "policy_pack" / "__main__.py")
    (tmp_path / "policies").mkdir()
    text = (ROOT / "policy.yaml").read_text().replace("organization: Example Telecom", "organization: Other Org")
    (tmp_path / "policies" / "privacy.yaml").write_text(text)
    return tmp_path


def test_relative_policy_file_is_relative_to_the_project_root(project: Path, config: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    config["vigil:policyFile"] = "policies/privacy.yaml"
    mocks = _run_as_the_engine_does(project / "infra", config, monkeypatch)
    assert "other-org-evidence" in _buckets(mocks)  # the name prefix is the slug of that file's organization


def test_absolute_policy_file_is_used_as_is(project: Path, config: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    config["vigil:policyFile"] = str(project / "policies" / "privacy.yaml")
    mocks = _run_as_the_engine_does(ROOT / "infra", config, monkeypatch)
    assert "other-org-evidence" in _buckets(mocks)


def test_root_is_the_nearest_folder_holding_pulumi_yaml(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert project_root(project / "infra" / "policy_pack") == project
    monkeypatch.chdir(project / "infra")
    assert project_root() == project
    (project / "infra" / "Pulumi.yml").write_text("name: inner\nruntime: python\n")
    assert project_root() == project / "infra"


def test_root_reported_by_the_engine_wins(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT / "infra")
    monkeypatch.setattr(pulumi, "get_root_directory", lambda: str(project))  # what a current engine tells the SDK
    assert project_root() == project
    monkeypatch.setattr(pulumi, "get_root_directory", lambda: "root_directory")  # the SDK's placeholder without an engine
    assert project_root() == ROOT


def test_policy_pack_reads_vigil_policy_relative_to_the_project_root(project: Path) -> None:
    """The pack as the CLI starts it (cwd: the pack's folder), told where the policy is by VIGIL_POLICY."""
    pack = project / "infra" / "policy_pack"
    env = {**os.environ, "VIGIL_POLICY": "policies/privacy.yaml"}
    process = subprocess.Popen([sys.executable, str(pack / "__main__.py")], cwd=pack, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.isdigit(), process.stderr.read()[-2000:] if process.poll() is not None else line
        with grpc.insecure_channel(f"127.0.0.1:{line}") as channel:
            info = analyzer_pb2_grpc.AnalyzerStub(channel).GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
        assert "vigil-tls-01" in {p.name for p in info.policies}
    finally:
        process.terminate()
        process.wait(timeout=10)
