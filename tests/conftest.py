"""Shared test setup: fake credentials for moto, and no real AWS configuration leaking in."""
from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The normative contract, vendored in docs/spec/ so a clone alone can run the suite;
# test_policy_file checks the copy against ../shared/spec/ wherever that is present.
SPEC = ROOT / "docs" / "spec"
SHARED_SPEC = ROOT.parent / "shared" / "spec"


@pytest.fixture(autouse=True)
def fake_aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "VIGIL_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # tests never ask an instance metadata service


@pytest.fixture(autouse=True)
def private_lock_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Retention's per-store lock files, per test: parallel tests use the same bucket names."""
    monkeypatch.setenv("VIGIL_LOCK_DIR", str(tmp_path_factory.mktemp("locks")))


@pytest.fixture
def policy_path() -> Path:
    return ROOT / "policy.yaml"


@contextmanager
def loopback_moto() -> Iterator[str]:
    """A real moto server on 127.0.0.1 (free port), stopped on exit; yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    _reset(url)  # moto keeps state per process (shared with mock_aws): start empty, leave nothing
    try:
        yield url
    finally:
        _reset(url)
        server.stop()


def _reset(url: str) -> None:
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).read()


@pytest.fixture
def moto_server() -> Iterator[str]:
    with loopback_moto() as url:
        yield url


@pytest.fixture(scope="module")
def moto_server_module() -> Iterator[str]:
    """One server for a whole test module (tests that only add state and read their own)."""
    with loopback_moto() as url:
        yield url


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server on 127.0.0.1 for the session (statements logged, to prove what never reaches them)."""
    from vigil.retention.postgres.local_server import LocalPostgres, missing_reason

    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    server = LocalPostgres({"log_statement": "all", "log_min_duration_statement": "0"}).start()
    try:
        yield server
    finally:
        server.stop()
