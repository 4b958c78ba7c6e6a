"""Shared test setup: fake credentials for moto, and no real AWS configuration leaking in."""
from __future__ import annotations

import functools
import inspect
import os
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The normative contract, vendored in docs/spec/ so a clone alone can run the suite;
# test_policy_file checks the copy against ../shared/spec/ wherever that is present.
SPEC = ROOT / "docs" / "spec"
SHARED_SPEC = ROOT.parent / "shared" / "spec"


# Tests that start a moto server, a subprocess, a browser or a database server are `slow`
# (`make test-fast` leaves them out). Those using a server fixture are marked here; the guard
# below fails any other test that starts one (in its body or in any fixture, module- and
# session-scoped ones included) without the marker, so the split stays honest.
SLOW_FIXTURES = {"moto_server", "moto_server_module", "postgres_server", "spark_session"}
_running: dict[str, pytest.Item | None] = {"item": None}


STARTS_SLOW_WORK = re.compile(r"\b(loopback_moto|ThreadedMotoServer|LocalPostgres|subprocess\.(run|Popen|check_call|check_output))\(")


@functools.cache
def _starts_slow_work(function: Any) -> bool:
    return bool(STARTS_SLOW_WORK.search(_source(function)))


@functools.cache
def _slow_helpers(module: Any) -> re.Pattern[str] | None:
    """Calls of the module's own functions and classes that start slow work (directly or through each other)."""
    own = {name: obj for name, obj in vars(module).items()
           if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == module.__name__}
    slow = {name for name, obj in own.items() if _starts_slow_work(obj)}
    while True:
        pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(slow))) + r")\(") if slow else None
        more = {name for name, obj in own.items() if name not in slow and pattern and pattern.search(_source(obj))}
        if not more:
            return pattern
        slow |= more


def _source(function: Any) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return ""


def _is_slow(function: Any, helpers: re.Pattern[str] | None) -> bool:
    return _starts_slow_work(function) or bool(helpers and helpers.search(_source(function)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        info = getattr(item, "_fixtureinfo", None)
        defs = [d for ds in (info.name2fixturedefs.values() if info else ()) for d in ds]
        module = getattr(item, "module", None)
        helpers = _slow_helpers(module) if module is not None else None
        if fixtures & SLOW_FIXTURES or item.get_closest_marker("browser") or item.get_closest_marker("e2e") \
                or any(_is_slow(d.func, helpers) for d in defs) or _is_slow(getattr(item, "function", None), helpers):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _running["item"] = item  # before its fixtures are set up


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    _running["item"] = None  # stopping what a fixture started (a session's server at the end) is never refused


def _only_when_slow(owner: type, name: str, what: str) -> None:
    original = getattr(owner, name)

    def guarded(self, *args, **kwargs):
        item = _running["item"]
        if item is not None and not item.get_closest_marker("slow"):
            raise AssertionError(f"{item.nodeid} starts {what}: mark it @pytest.mark.slow (make test-fast leaves those out)")
        return original(self, *args, **kwargs)

    setattr(owner, name, guarded)


def pytest_configure(config: pytest.Config) -> None:
    from moto.server import ThreadedMotoServer

    _only_when_slow(subprocess.Popen, "__init__", "a subprocess")
    _only_when_slow(ThreadedMotoServer, "start", "a moto server")


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


@pytest.fixture(scope="session", autouse=True)
def session_lock_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Lock files private to this test process from the start, so module- and session-scoped
    fixtures (which run before the per-test one below) never share the machine's lock folder
    with another xdist worker or another checkout's test run."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VIGIL_LOCK_DIR", str(tmp_path_factory.mktemp("session-locks")))
        yield


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
    # Generous: a reset walks every service's state, and on a loaded CI machine 10 s was not always enough.
    urllib.request.urlopen(request, timeout=120).read()


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
def spark_session():
    """One local[2] SparkSession for the whole session (start-up takes 7-20 s on 2 cores); skipped,
    saying why, only when pyspark or a JVM is missing. Its Python workers inherit this process's
    environment from the moment it starts, so the fake credentials are set before it does."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed (pip install 'vigil[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no JVM: Spark in local mode needs java (Debian: openjdk-17-jre-headless)")
    from pyspark.sql import SparkSession

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_CONFIG_FILE", "/dev/null"), ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
                        ("AWS_EC2_METADATA_DISABLED", "true"), ("PYSPARK_PYTHON", sys.executable),
                        ("SPARK_LOCAL_IP", "127.0.0.1")):
        os.environ.setdefault(name, value)
    spark = (SparkSession.builder.master("local[2]").appName("vigil-tests")
             .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    yield spark
    spark.stop()


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
