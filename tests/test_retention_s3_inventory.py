"""Planning a store from its S3 Inventory report (retention/s3_inventory.py): the same plan as a
listing, no ListObjectVersions on the source bucket, tampered or incomplete reports refused."""
from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from vigil.retention.keys import RetentionKeys
from vigil.retention.s3_inventory import InventoryError, _parse_manifest
from vigil.retention.scan import ScanContext, scan_store

from tests.aging import YEAR, written_ago
from tests.helpers import repo_policy
from tests.inventory_reports import FIELDS, csv_gz, manifest, write_report
from tests.test_retention_world import KEY, NOW, World, store_plan
from vigil.aws import Aws
from vigil.policy.models import InventorySource

DEST = "example-inventory"
SOURCE = "example-billing"
LOCKED = "example-sms-consent"


def _bucket(s3: Any, name: str, lock: bool = False) -> None:
    s3.create_bucket(Bucket=name, **({"ObjectLockEnabledForBucket": True} if lock else {}))
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def _world(s3: Any, seed: int) -> None:
    """A varied world: odd keys, several versions, delete markers, ages either side of retention, locks."""
    rng = random.Random(seed)
    names = ["a b.json", "plus+sign.json", "pct%41.json", "ünï.json", "deep/er/x.json", "plain.json"]
    for index in range(12 + seed * 5):
        key = f"invoices/s{rng.randrange(4)}/{rng.choice(names).replace('.json', f'-{index % 7}.json')}"
        for _ in range(rng.randrange(1, 4)):
            with written_ago(rng.choice([YEAR, 3 * YEAR, 8 * YEAR, 9 * YEAR])):
                s3.put_object(Bucket=SOURCE, Key=key, Body=b"{}")
        if rng.random() < 0.25:
            with written_ago(rng.choice([YEAR, 8 * YEAR])):
                s3.delete_object(Bucket=SOURCE, Key=key)
        with written_ago(rng.choice([YEAR, 6 * YEAR])):
            extra: dict[str, Any] = rng.choice([
                {}, {"ObjectLockLegalHoldStatus": "ON"},
                {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": NOW + timedelta(days=400)}])
            s3.put_object(Bucket=LOCKED, Key=f"c/{index}.json", Body=b"{}", **extra)


def _plan(aws: Aws, store) -> tuple[list[dict[str, Any]], Any]:
    # judged now, not at import: under xdist the module is imported minutes before a test runs, and the
    # reports a test writes are stamped with the real clock
    actions: list[dict[str, Any]] = []
    with ThreadPoolExecutor(4) as pool:
        ctx = ScanContext(aws, repo_policy(), RetentionKeys(KEY), datetime.now(UTC), {}, pool, actions.append)
        summaries = scan_store(ctx, store)
    return actions, summaries[0]


def _targets(actions: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return sorted((a["action"], a["location"], key, version) for a in actions for key, version in a.get("objects", []))


def _store(name: str, with_report: bool):
    store = next(s for s in repo_policy().stores if s.name == name)
    return store.model_copy(update={"inventory": InventorySource(bucket=DEST, prefix="inventory", config_id="all")}) if with_report else store


def _counted(aws: Aws) -> Counter:
    calls: Counter = Counter()
    lock = threading.Lock()

    def count(params: dict, model, **_kwargs) -> None:
        with lock:
            calls[(model.name, params.get("Bucket"))] += 1

    aws.session.events.register("before-parameter-build.s3", count)
    return calls


@pytest.mark.parametrize("seed,file_format", [(0, "CSV"), (1, "Parquet"), (2, "ORC")])
def test_plan_from_inventory_equals_plan_from_listing(seed: int, file_format: str) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for name, lock in ((SOURCE, False), (LOCKED, True), (DEST, False)):
            _bucket(s3, name, lock)
        _world(s3, seed)
        created = datetime.now(UTC)
        for bucket in (SOURCE, LOCKED):
            write_report(s3, bucket, DEST, "all", created, n_files=1 + seed, seed=seed, file_format=file_format)
        for name in ("billing", "consent"):
            listed_actions, listed = _plan(Aws(), _store(name, False))
            aws = Aws()
            calls = _counted(aws)
            report_actions, reported = _plan(aws, _store(name, True))
            assert _targets(report_actions) == _targets(listed_actions)
            assert reported.to_json() == {**listed.to_json(), "inventory": reported.inventory}
            assert listed.counts["delete"] + listed.counts["held"] > 0, "the world must exercise the planner"
            assert reported.inventory["manifest"].endswith("/manifest.json")
            assert 0 <= reported.inventory["age_hours"] < 1
            bucket = listed.resource.removeprefix("arn:aws:s3:::")
            assert calls[("ListObjectVersions", bucket)] == 0, "planning from a report must not list the source bucket"


def test_listing_is_counted_so_the_zero_above_means_something() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        _bucket(s3, SOURCE)
        aws = Aws()
        calls = _counted(aws)
        _plan(aws, _store("billing", False))
        assert calls[("ListObjectVersions", SOURCE)] >= 1


def _one_report(s3: Any, **kw: Any) -> str:
    for name in (SOURCE, DEST):
        _bucket(s3, name)
    with written_ago(8 * YEAR):
        s3.put_object(Bucket=SOURCE, Key="invoices/s1/old.json", Body=b"{}")
    return write_report(s3, SOURCE, DEST, "all", datetime.now(UTC) - timedelta(hours=30), **kw)


def _refused(reason: str) -> str:
    actions, summary = _plan(Aws(), _store("billing", True))
    assert actions == [], "a refused report plans nothing"
    assert summary.counts["error"] == 1 and summary.inventory is None
    assert reason in summary.errors[0]["reason"], summary.errors
    return summary.errors[0]["reason"]


def test_tampered_manifest_checksum_is_refused() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        key = _one_report(s3)
        s3.put_object(Bucket=DEST, Key=key.replace("manifest.json", "manifest.checksum"), Body=b"0" * 32)
        _refused("does not match manifest.checksum")


def test_tampered_data_file_is_refused() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        key = _one_report(s3, n_files=1)
        data_key = json.loads(s3.get_object(Bucket=DEST, Key=key)["Body"].read())["files"][0]["key"]
        s3.put_object(Bucket=DEST, Key=data_key, Body=csv_gz([]))  # the rows gone, the manifest unchanged
        _refused("MD5 does not match the manifest")


def test_report_without_the_lock_fields_is_refused() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        _one_report(s3, fields=FIELDS[:12])
        _refused("lacks fields ObjectLockMode, ObjectLockRetainUntilDate, ObjectLockLegalHoldStatus")


def test_no_report_is_an_error_for_the_store() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for name in (SOURCE, DEST):
            _bucket(s3, name)
        _refused("no complete inventory report under s3://example-inventory/inventory/example-billing/all/")


def test_newest_complete_report_is_used_and_names_its_age() -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        older = _one_report(s3)
        # a newer report still being written: manifest.json without manifest.checksum
        s3.put_object(Bucket=DEST, Key="inventory/example-billing/all/2099-01-01T00-00Z/manifest.json", Body=b"{}")
        actions, summary = _plan(Aws(), _store("billing", True))
        assert summary.inventory["manifest"] == older
        assert 29.9 < summary.inventory["age_hours"] < 30.1
        assert summary.counts["delete"] == 1 and len(_targets(actions)) == 1


BLOCK_PYARROW = """
import sys
from importlib.abc import MetaPathFinder
class Refuse(MetaPathFinder):  # an install without the inventory extra: pyarrow cannot be imported
    def find_spec(self, name, path=None, target=None):
        if name == "pyarrow" or name.startswith("pyarrow."):
            raise ImportError("No module named " + repr(name))
sys.meta_path.insert(0, Refuse())
"""


@pytest.mark.parametrize("file_format,article", [("Parquet", "a Parquet"), ("ORC", "an ORC")])
def test_parquet_without_pyarrow_names_the_extra(file_format: str, article: str) -> None:
    """In a child process whose imports refuse pyarrow, so the message is proven where pyarrow is installed."""
    from tests.conftest import ROOT

    script = BLOCK_PYARROW + f"sys.path.insert(0, {str(ROOT)!r})\n" + \
        f"from tests.test_retention_s3_inventory import without_pyarrow\nwithout_pyarrow({file_format!r})\nprint('refused')\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.splitlines()[-1:] == ["refused"], done.stdout + done.stderr
    assert f"{article} inventory report needs pyarrow: pip install 'vigil[inventory]'" in done.stdout


def without_pyarrow(file_format: str) -> None:
    """The store is refused with the extra named (run by the test above with pyarrow blocked)."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("pyarrow must be blocked here")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        for name in (SOURCE, DEST):
            _bucket(s3, name)
        body = b"PAR1 not really parquet PAR1"
        root = "inventory/example-billing/all/"
        files = [{"key": f"{root}data/x.{file_format.lower()}", "size": len(body), "MD5checksum": hashlib.md5(body).hexdigest()}]  # noqa: S324
        s3.put_object(Bucket=DEST, Key=files[0]["key"], Body=body)
        doc = manifest(SOURCE, DEST, datetime.now(UTC), files, file_format=file_format)
        s3.put_object(Bucket=DEST, Key=f"{root}2026-01-01T00-00Z/manifest.json", Body=doc)
        s3.put_object(Bucket=DEST, Key=f"{root}2026-01-01T00-00Z/manifest.checksum", Body=hashlib.md5(doc).hexdigest().encode())  # noqa: S324
        print(_refused("pip install 'vigil[inventory]'"))


# A manifest shaped as AWS documents it ("Locating your inventory list" / "Configuring Amazon S3
# Inventory"): field names, the "2016-11-30" version, the creation time in epoch milliseconds as a
# string, the schema as one comma-and-space separated string, files with key, size and MD5checksum.
DOCUMENTED = b"""{
    "sourceBucket": "amzn-s3-demo-source-bucket",
    "destinationBucket": "arn:aws:s3:::amzn-s3-demo-inventory-destination-bucket",
    "version": "2016-11-30",
    "creationTimestamp" : "1514944800000",
    "fileFormat": "CSV",
    "fileSchema": "Bucket, Key, VersionId, IsLatest, IsDeleteMarker, Size, LastModifiedDate, ETag, StorageClass, IsMultipartUploaded, ReplicationStatus, EncryptionStatus, ObjectLockRetainUntilDate, ObjectLockMode, ObjectLockLegalHoldStatus",
    "files": [
        {
            "key": "Inventory/amzn-s3-demo-source-bucket/2016-11-06T21-32Z/files/939c6d46-85a9-4ba8-87bd-9db705a579ce.csv.gz",
            "size": 2147483647,
            "MD5checksum": "f11166069f1990abeb9c97ace9cdfabc"
        }
    ]
}"""


def test_golden_documented_manifest_and_the_helper_agree() -> None:
    report = _parse_manifest("dest", "m.json", DOCUMENTED, hashlib.md5(DOCUMENTED).hexdigest().encode(),  # noqa: S324
                             "amzn-s3-demo-source-bucket")
    assert report.created == datetime(2018, 1, 3, 2, 0, tzinfo=UTC)
    assert report.schema == FIELDS and report.file_format == "CSV"
    ours = json.loads(manifest("src", "dest", report.created, [{"key": "k", "size": 1, "MD5checksum": "0" * 32}]))
    documented = json.loads(DOCUMENTED)
    assert ours.keys() == documented.keys()
    assert {k: ours[k] for k in ("version", "creationTimestamp", "fileFormat", "fileSchema")} == \
        {k: documented[k] for k in ("version", "creationTimestamp", "fileFormat", "fileSchema")}
    assert ours["files"][0].keys() == documented["files"][0].keys()
    with pytest.raises(InventoryError, match="does not match manifest.checksum"):
        _parse_manifest("dest", "m.json", DOCUMENTED, b"f11166069f1990abeb9c97ace9cdfabc", "amzn-s3-demo-source-bucket")


def test_golden_csv_row_format() -> None:
    row = dict.fromkeys(FIELDS, "") | {"Bucket": "b", "Key": "a b/c+d.json", "VersionId": "v1", "IsLatest": "true",
                                       "IsDeleteMarker": "false", "Size": "3", "LastModifiedDate": "2016-11-06T21:32:00.000Z"}
    line = __import__("gzip").decompress(csv_gz([row])).decode()
    assert line.startswith('"b","a+b%2Fc%2Bd.json","v1","true","false","3","2016-11-06T21:32:00.000Z",')


def report_world(tmp_path: Path, monkeypatch) -> World:
    """A World (inside mock_aws) whose billing store plans from reports in DEST; both buckets made."""

    def with_report(data: dict) -> None:
        store = next(s for s in data["stores"] if s["name"] == "billing")
        store["inventory"] = {"bucket": DEST, "prefix": "inventory", "config_id": "all"}

    world = World(tmp_path, monkeypatch, with_report)
    world.bucket(SOURCE)
    world.bucket(DEST)
    return world


def test_retain_apply_from_a_report_deletes_and_a_vanished_version_counts_as_done(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = report_world(tmp_path, monkeypatch)
        with written_ago(8 * YEAR):
            gone = world.put(SOURCE, "invoices/s1/gone.json", "{}")
            world.put(SOURCE, "invoices/s1/old.json", "{}")
        world.put(SOURCE, "invoices/s1/new.json", "{}")
        s3 = world.s3["us-east-1"]
        manifest_key = write_report(s3, SOURCE, DEST, "all", datetime.now(UTC))
        with written_ago(8 * YEAR):
            world.put(SOURCE, "invoices/s2/after-the-report.json", "{}")  # waits for the next report
        s3.delete_object(Bucket=SOURCE, Key="invoices/s1/gone.json", VersionId=gone)  # gone before apply

        code, plan, out = world.retain("--apply", "--store", "billing")
        billing = store_plan(plan, "billing")
        assert billing["inventory"]["manifest"] == manifest_key
        assert billing["counts"]["delete"] == 2 and billing["errors"] == []
        outcomes = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
        outcomes = [o for o in outcomes if o["phase"] == "outcome"]
        assert len(outcomes) == 1 and outcomes[0]["outcome"] == "ok", outcomes  # the vanished version is done, not failed
        left = sorted(v["key"] for v in world.versions(SOURCE))
        assert left == ["invoices/s1/new.json", "invoices/s2/after-the-report.json"]
        # verify lists the bucket (a report predates the apply): the object written after the report is
        # left for the next report, and verify says so (exit 1) rather than claiming the store is clean.
        assert billing["verify"] == {"status": "fail", "remaining": 1}
        assert code == 1


@pytest.mark.parametrize("entry,key,words", [
    ("{bucket: example-inventory, config_id: 'bad id!'}", "stores[1].inventory.config_id", "should match pattern"),
    ("{bucket: example-inventory, config_id: all, format: orc}", "stores[1].inventory.format", "unknown key"),
    ("{bucket: example-inventory}", "stores[1].inventory.config_id", "required key is missing"),
])
def test_bad_inventory_setting_names_file_line_and_key(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                       entry: str, key: str, words: str) -> None:
    from tests.conftest import ROOT
    from vigil.cli.main import main

    text = (ROOT / "policy.yaml").read_text().replace(
        "    category: billing\n", f"    category: billing\n    inventory: {entry}\n", 1)
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    assert main(["check", "--policy", str(path), "--validate-only"]) == 2
    err = capsys.readouterr().err
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if "inventory: {" in ln)
    assert f"{path}:{line}: {key}: " in err and words in err, err


def test_iam_policy_grants_report_reads_only_on_the_inventory_bucket() -> None:
    from vigil.permissions import COMMANDS, Targets, build

    policy = repo_policy()
    stores = [s.model_copy(update={"inventory": InventorySource(bucket=DEST, prefix="inventory/", config_id="all")})
              if s.name == "billing" else s for s in policy.stores]
    with_reports = policy.model_copy(update={"stores": stores})
    plain = {s["Sid"]: s for s in build(COMMANDS["retain"], Targets.of(policy, ["us-east-1"]))["Statement"]}
    granted = {s["Sid"]: s for s in build(COMMANDS["retain"], Targets.of(with_reports, ["us-east-1"]))["Statement"]}
    assert "InventoryBuckets" not in plain and "InventoryReports" not in plain
    assert granted["InventoryBuckets"]["Action"] == ["s3:ListBucket"]
    assert granted["InventoryBuckets"]["Resource"] == [f"arn:aws:s3:::{DEST}"]
    assert granted["InventoryReports"] == {"Sid": "InventoryReports", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                                           "Resource": [f"arn:aws:s3:::{DEST}/inventory/*"]}
    assert "s3:ListBucket" not in granted["StoreBuckets"]["Action"], "listing objects is for the reports only"
