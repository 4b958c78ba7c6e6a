"""The job `vigil schedule` runs: one folder per run, retention applied only by the retain job
and only when the scheduler was started with --apply (real pipeline, loopback moto server)."""
from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.aging import YEAR, written_ago
from vigil.cli.schedule import scheduled_job
from vigil.scheduler.logs import EventLog
from vigil.scheduler.metrics import read_samples
from vigil.scheduler.pipeline import JobOptions
from vigil.scheduler.service import StopFlag

ROOT = Path(__file__).resolve().parent.parent
BILLING = "example-billing"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(b"k" * 32).decode())
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    s3.create_bucket(Bucket=BILLING)
    with written_ago(8 * YEAR):  # past billing's seven years
        for i in range(2):
            s3.put_object(Bucket=BILLING, Key=f"invoices/{i}.json", Body=b"{}")
    try:
        yield url
    finally:
        server.stop()


def billing(endpoint: str) -> int:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return s3.list_objects_v2(Bucket=BILLING).get("KeyCount", 0)


def options(endpoint: str, apply: bool, max_delete: int | None = None) -> JobOptions:
    return JobOptions(policy=str(ROOT / "policy.yaml"), endpoint_url=endpoint, regions=("us-east-1",),
                      apply=apply, max_delete=max_delete)


def test_without_apply_the_retain_job_only_plans(endpoint: str, tmp_path: Path) -> None:
    job = scheduled_job(options(endpoint, apply=False), tmp_path, EventLog("json", io.StringIO()), StopFlag(), None)
    job("retain")
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert "-retain-" in folder.name and (folder / "retention-plan.json").is_file()
    assert (folder / "findings.json").is_file()  # a complete pack: check, retain, report
    assert (folder / "report.html").is_file() and (folder / "manifest.json").is_file()
    assert billing(endpoint) == 2 and not (folder / "ledger.jsonl").exists()


def test_with_apply_the_retain_job_deletes_and_each_run_gets_a_folder(endpoint: str, tmp_path: Path) -> None:
    log, metrics = io.StringIO(), tmp_path / "metrics" / "vigil.prom"
    job = scheduled_job(options(endpoint, apply=True), tmp_path / "evidence", EventLog("json", log), StopFlag(), metrics)
    first = job("retain")
    assert billing(endpoint) == 0 and first in (0, 1)  # 1: the empty account fails controls
    job("retain")  # nothing left: a second run changes nothing
    folders = sorted(p for p in (tmp_path / "evidence").iterdir() if p.is_dir())
    assert len(folders) == 2 and len({p.name for p in folders}) == 2
    records = [json.loads((p / "run.json").read_text()) for p in folders]
    assert [r["retention"] for r in records] == [{"deleted": 2}, {}]
    assert all(r["apply"] is True and r["job"] == "retain" for r in records)
    assert read_samples(metrics)[("vigil_retention_actions_total", '{action="deleted"}')] == 2
    assert read_samples(metrics)[("vigil_runs_total", f'{{exit_code="{first}",job="retain"}}')] >= 1
    finished = [json.loads(line) for line in log.getvalue().splitlines() if '"run.finished"' in line]
    assert [e["job"] for e in finished] == ["retain", "retain"]


def test_stop_requested_abandons_the_remaining_stages(endpoint: str, tmp_path: Path) -> None:
    stop = StopFlag()
    stop.request()
    job = scheduled_job(options(endpoint, apply=True), tmp_path, EventLog("json", io.StringIO()), stop, None)
    job("retain")
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    record = json.loads((folder / "run.json").read_text())
    assert {s["status"] for s in record["stages"]} == {"abandoned: stop requested"}
    assert billing(endpoint) == 2


def test_max_delete_caps_a_scheduled_retain_run(endpoint: str, tmp_path: Path) -> None:
    job = scheduled_job(options(endpoint, apply=True, max_delete=1), tmp_path, EventLog("json", io.StringIO()), StopFlag(), None)
    assert job("retain") == 1  # the plan deletes 2 > 1: the run stops and says so
    assert billing(endpoint) == 2
