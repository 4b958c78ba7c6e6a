"""S3 Inventory reports at scale (retention/s3_inventory_rows.py): the external sort (runs spilled
privately, merged in key order, memory bounded), ORC and Parquet reports through the real path,
AWS's documented ORC/Parquet manifests, and the property that a plan from any report equals the
plan from listing the same moto world."""
from __future__ import annotations

import gzip
import hashlib
import json
import random
import stat
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from vigil.retention import s3_inventory_rows as rows_module
from vigil.retention.s3_inventory import InventoryError, Report, Scratch, _parse_manifest, entries
from vigil.retention.s3_inventory_rows import sorted_rows

from tests.aging import YEAR, written_ago
from tests.inventory_reports import FIELDS, aws_time, csv_gz, data_file, manifest, rows_from, write_report
from tests.test_retention_s3_inventory import DEST, SOURCE, _bucket, _plan, _store, _targets, report_world
from tests.test_retention_world import store_plan
from vigil.aws import Aws

FORMATS = ("CSV", "Parquet", "ORC")


# --- the external sort ---------------------------------------------------------------------------

def _rows(n: int, seed: int) -> list[tuple]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        key = f"k/{rng.randrange(n // 3 + 1):05d}-{'é' if i % 5 == 0 else ''}"
        out.append((key, rng.randrange(2), -rng.randrange(10**15), f"v{i}", rng.randrange(2), rng.randrange(99), "", -1, 0))
    return out


def test_sorted_rows_spills_private_runs_and_merges_them_in_order(tmp_path: Path) -> None:
    rows = _rows(1000, 1)
    with Scratch() as scratch:
        assert stat.S_IMODE(scratch.stat().st_mode) == 0o700
        merged = sorted_rows(iter(rows), scratch, limit=7)  # 143 runs: more than FAN_IN, so merged in two passes
        runs = sorted(scratch.iterdir())
        assert len(runs) > 1 and any(p.name.startswith("merge-") for p in runs)
        assert len(runs) <= rows_module.FAN_IN
        assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in runs)
        assert [tuple(r) for r in merged] == sorted(rows)
        # compact: gzip'd orjson arrays of plain values, not pickled objects
        line = gzip.decompress(runs[-1].read_bytes()).split(b"\n")[0]
        assert line.startswith(b'[["k/')
    assert not scratch.exists(), "the scratch directory goes when planning ends"


def test_a_report_that_fits_the_buffer_is_sorted_in_memory() -> None:
    rows = _rows(50, 2)
    with Scratch() as scratch:
        assert list(sorted_rows(iter(rows), scratch, limit=100)) == sorted(rows)
        assert list(scratch.iterdir()) == []


def _peak(n: int) -> int:
    with Scratch() as scratch:
        tracemalloc.start()
        for _ in sorted_rows((row for row in _rows_lazy(n)), scratch, limit=500):
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _rows_lazy(n: int):
    for i in range(n):
        yield (f"k/{(i * 7919) % n:07d}", i % 2, -i, f"v{i}", 0, 1, "", -1, 0)


def test_memory_stays_flat_as_the_report_grows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Scaled down: a 500-row buffer, 8 runs merged at a time, 16 rows per run line (a merge holds
    # FAN_IN lines); both sizes spill more runs than FAN_IN, so both take multi-pass merges.
    monkeypatch.setattr(rows_module, "FAN_IN", 8)
    monkeypatch.setattr(rows_module, "CHUNK_ROWS", 16)
    small, large = _peak(5_000), _peak(40_000)
    assert large < small * 1.3, (small, large)  # 8x the rows, not 8x the memory


# --- reading real reports: CSV, Parquet, ORC ----------------------------------------------------------

def _one_version_world(s3: Any) -> None:
    for name in (SOURCE, DEST):
        _bucket(s3, name)
    with written_ago(8 * YEAR):
        s3.put_object(Bucket=SOURCE, Key="invoices/s1/old one+é.json", Body=b"{}")
        s3.put_object(Bucket=SOURCE, Key="invoices/s1/held.json", Body=b"{}")
    s3.put_object(Bucket=SOURCE, Key="invoices/s1/new.json", Body=b"{}")


@pytest.mark.parametrize("file_format", FORMATS)
def test_each_format_is_read_through_the_real_path(file_format: str) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        _one_version_world(s3)
        rows = rows_from(s3, SOURCE)
        for row in rows:
            if row["Key"].endswith("held.json"):
                row["ObjectLockLegalHoldStatus"] = "ON"
        key = write_report(s3, SOURCE, DEST, "all", datetime.now(UTC), rows=rows, file_format=file_format)
        assert key.endswith("manifest.json")
        actions, summary = _plan(Aws(), _store("billing", True))
        assert summary.errors == [] and summary.inventory["manifest"] == key
        assert [(k, a) for a, _, k, _ in _targets(actions)] == [("invoices/s1/old one+é.json", "delete_versions")]
        assert summary.counts["held"] == 1 and summary.counts["keep"] == 1


@pytest.mark.parametrize("file_format", ["Parquet", "ORC"])
def test_arrow_reports_parse_the_manifest_schema_as_aws_documents_it(file_format: str) -> None:
    documented = {  # fileSchema of AWS's documented example manifests ("Locating your inventory list")
        "ORC": "struct<bucket:string,key:string,version_id:string,is_latest:boolean,is_delete_marker:boolean,size:bigint,"
               "last_modified_date:timestamp,e_tag:string,storage_class:string,is_multipart_uploaded:boolean,"
               "replication_status:string,encryption_status:string,object_lock_retain_until_date:timestamp,"
               "object_lock_mode:string,object_lock_legal_hold_status:string,intelligent_tiering_access_tier:string,"
               "bucket_key_status:string,checksum_algorithm:string>",
        "Parquet": "message s3.inventory { required binary bucket (UTF8); required binary key (UTF8); optional binary version_id "
                   "(UTF8); optional boolean is_latest; optional boolean is_delete_marker; optional int64 size; optional int64 "
                   "last_modified_date (TIMESTAMP_MILLIS); optional binary e_tag (UTF8); optional binary storage_class (UTF8); "
                   "optional boolean is_multipart_uploaded; optional binary replication_status (UTF8); optional binary "
                   "encryption_status (UTF8); optional int64 object_lock_retain_until_date (TIMESTAMP_MILLIS); optional binary "
                   "object_lock_mode (UTF8); optional binary object_lock_legal_hold_status (UTF8); optional binary "
                   "intelligent_tiering_access_tier (UTF8); optional binary bucket_key_status (UTF8); optional binary "
                   "checksum_algorithm (UTF8); }"}[file_format]
    doc = json.dumps({"sourceBucket": "src", "destinationBucket": "arn:aws:s3:::dest", "version": "2016-11-30",
                      "creationTimestamp": "1514944800000", "fileFormat": file_format, "fileSchema": documented,
                      "files": [{"key": "inventory/src/data/x", "size": 56291, "MD5checksum": "0" * 32}]}).encode()
    report = _parse_manifest("dest", "m.json", doc, hashlib.md5(doc).hexdigest().encode(), "src")  # noqa: S324
    assert report.file_format == file_format.upper()
    assert report.schema[:15] == FIELDS and report.schema[15:] == ("IntelligentTieringAccessTier", "BucketKeyStatus",
                                                                   "ChecksumAlgorithm")
    assert report.column("LastModifiedDate") == "last_modified_date" and report.column("ETag") == "e_tag"
    ours = json.loads(manifest("src", "dest", report.created, [], FIELDS, file_format))["fileSchema"]
    assert documented.startswith(ours.rstrip(">}").rstrip())  # the helper writes the same spelling


def test_a_bad_row_refuses_the_report_naming_file_line_and_column(tmp_path: Path) -> None:
    good = {f: "" for f in FIELDS} | {"Bucket": SOURCE, "Key": "invoices/a.json", "VersionId": "v1", "IsLatest": "true",
                                      "IsDeleteMarker": "false", "Size": "3", "LastModifiedDate": "2020-01-01T00:00:00.000Z"}
    path = tmp_path / "000000"
    path.write_bytes(csv_gz([good, good | {"VersionId": "v2", "LastModifiedDate": "yesterday"}]))
    report = Report(DEST, "m.json", datetime.now(UTC), "CSV", FIELDS, ({"key": "inv/data/a.csv.gz"},))
    with Scratch() as scratch, pytest.raises(InventoryError) as caught:
        entries(report, [path], "", scratch)
    assert str(caught.value) == "s3://example-inventory/inv/data/a.csv.gz:2: LastModifiedDate: 'yesterday' is not an ISO 8601 time"


def test_rows_in_other_spellings_take_the_exact_path_and_agree(tmp_path: Path) -> None:
    base = {f: "" for f in FIELDS} | {"Bucket": SOURCE, "Key": "invoices/a.json", "Size": "3", "ObjectLockLegalHoldStatus": "OFF"}
    rows = [base | {"VersionId": "v1", "IsLatest": "TRUE", "IsDeleteMarker": "False", "LastModifiedDate": "2020-01-01T00:00:00"},
            base | {"VersionId": "v2", "IsLatest": "false", "IsDeleteMarker": "false",
                    "LastModifiedDate": "2019-01-01T02:00:00.000+02:00", "ObjectLockMode": "GOVERNANCE",
                    "ObjectLockRetainUntilDate": "2030-01-01T00:00:00.000Z"}]
    path = tmp_path / "000000"
    path.write_bytes(csv_gz(rows))
    report = Report(DEST, "m.json", datetime.now(UTC), "CSV", FIELDS, ({"key": "k"},))
    with Scratch() as scratch:
        (entry,) = list(entries(report, [path], "", scratch))
    latest, older = entry.versions
    assert (latest.version_id, latest.is_latest, latest.delete_marker) == ("v1", True, False)
    assert latest.last_modified == datetime(2020, 1, 1, tzinfo=UTC)
    assert older.last_modified == datetime(2019, 1, 1, tzinfo=UTC) and older.lock_mode == "GOVERNANCE"
    assert older.lock_until == datetime(2030, 1, 1, tzinfo=UTC) and latest.lock_until is None and latest.lock_mode is None


@pytest.mark.parametrize("file_format", FORMATS)
def test_a_corrupt_data_file_with_a_matching_md5_refuses_the_store(file_format: str) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        _one_version_world(s3)
        key = write_report(s3, SOURCE, DEST, "all", datetime.now(UTC), file_format=file_format, n_files=1)
        doc = json.loads(s3.get_object(Bucket=DEST, Key=key)["Body"].read())
        body = b"PAR1 not a data file ORC" if file_format != "CSV" else gzip.compress(b'"only","three","columns"\n')
        s3.put_object(Bucket=DEST, Key=doc["files"][0]["key"], Body=body)
        doc["files"][0]["MD5checksum"] = hashlib.md5(body).hexdigest()  # noqa: S324 - AWS's checksum is MD5
        text = json.dumps(doc).encode()
        s3.put_object(Bucket=DEST, Key=key, Body=text)
        s3.put_object(Bucket=DEST, Key=key.replace("manifest.json", "manifest.checksum"), Body=hashlib.md5(text).hexdigest().encode())  # noqa: S324
        actions, summary = _plan(Aws(), _store("billing", True))
        assert actions == [] and summary.counts["error"] == 1 and summary.inventory is None
        reason = summary.errors[0]["reason"]
        assert reason.startswith("inventory report refused: ") and doc["files"][0]["key"] in reason, reason


def test_a_legal_hold_in_any_spelling_is_a_hold(tmp_path: Path) -> None:
    base = {f: "" for f in FIELDS} | {"Bucket": SOURCE, "Key": "invoices/a.json", "IsLatest": "true", "IsDeleteMarker": "false",
                                      "Size": "3", "LastModifiedDate": "2010-01-01T00:00:00.000Z"}
    path = tmp_path / "000000"
    path.write_bytes(csv_gz([base | {"VersionId": f"v{i}", "ObjectLockLegalHoldStatus": hold}
                             for i, hold in enumerate(["ON", "on", "OFF", ""])]))
    report = Report(DEST, "m.json", datetime.now(UTC), "CSV", FIELDS, ({"key": "k"},))
    with Scratch() as scratch:
        (entry,) = list(entries(report, [path], "", scratch))
    assert {v.version_id: v.legal_hold for v in entry.versions} == {"v0": True, "v1": True, "v2": False, "v3": False}


# --- what an apply from a report touches ---------------------------------------------------------------

def test_a_tampered_last_data_file_refuses_the_store_and_nothing_is_deleted(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = report_world(tmp_path, monkeypatch)
        with written_ago(8 * YEAR):
            for i in range(6):
                world.put(SOURCE, f"invoices/s1/old-{i}.json", "{}")
        s3 = world.s3["us-east-1"]
        key = write_report(s3, SOURCE, DEST, "all", datetime.now(UTC), n_files=3)
        last = json.loads(s3.get_object(Bucket=DEST, Key=key)["Body"].read())["files"][-1]["key"]
        s3.put_object(Bucket=DEST, Key=last, Body=csv_gz([]))
        code, plan, _ = world.retain("--apply", "--store", "billing")
        billing = store_plan(plan, "billing")
        assert billing["counts"]["delete"] == 0 and billing["counts"]["error"] == 1
        assert f"s3://{DEST}/{last}: MD5 does not match the manifest" in billing["errors"][0]["reason"]
        assert len(world.versions(SOURCE)) == 6, "a refused report deletes nothing"
        assert code != 0


def test_versions_newer_than_the_report_wait_for_the_next_one(tmp_path: Path, monkeypatch) -> None:
    with mock_aws():
        world = report_world(tmp_path, monkeypatch)
        with written_ago(9 * YEAR):
            old = world.put(SOURCE, "invoices/s1/a.json", "{}")
        s3 = world.s3["us-east-1"]
        created = datetime.now(UTC) - timedelta(days=2)
        rows = rows_from(s3, SOURCE)
        # A row AWS wrote while the report was being generated, dated after its creationTimestamp, of a
        # version aged past retention by every other measure: it is not acted on from this report.
        with written_ago(9 * YEAR):
            during = world.put(SOURCE, "invoices/s1/during.json", "{}")
        late = rows_from(s3, SOURCE)
        rows += [r | {"LastModifiedDate": aws_time(created + timedelta(hours=1))} for r in late if r["VersionId"] == during]
        write_report(s3, SOURCE, DEST, "all", created, rows=rows)
        with written_ago(8 * YEAR):  # a new version of a reported key and a new key, both after the report
            world.put(SOURCE, "invoices/s1/a.json", "{}")
            world.put(SOURCE, "invoices/s2/after.json", "{}")
        code, plan, _ = world.retain("--apply", "--store", "billing")
        billing = store_plan(plan, "billing")
        assert billing["counts"]["delete"] == 1 and billing["errors"] == []
        left = sorted((v["key"], v["version"] == old) for v in world.versions(SOURCE))
        assert left == [("invoices/s1/a.json", False), ("invoices/s1/during.json", False), ("invoices/s2/after.json", False)]


# --- the property: a report plans what a listing plans ---------------------------------------------------

NAMES = st.text(st.sampled_from("ab +%/é日-_.~=&"), min_size=1, max_size=8)
AGES = st.sampled_from([YEAR, 3 * YEAR, 8 * YEAR, 9 * YEAR])
OBJECTS = st.lists(st.tuples(st.sampled_from(["invoices/s1/", "invoices/s2/x/", "other/"]), NAMES,
                             st.lists(AGES, min_size=1, max_size=3), st.one_of(st.none(), AGES),
                             st.sampled_from(["", "hold", "lock"])),
                   min_size=1, max_size=8, unique_by=lambda o: o[0] + o[1])


# No shrinking: each example builds a moto world (~1 s), and shrinking one took minutes.
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(objects=OBJECTS, file_format=st.sampled_from(FORMATS), n_files=st.integers(1, 3), seed=st.integers(0, 10**6),
       limit=st.sampled_from([2, 5, 10**6]))
def test_property_the_plan_from_a_report_equals_the_plan_from_listing(objects, file_format, n_files, seed, limit) -> None:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        _bucket(s3, SOURCE, lock=True)  # Object Lock: the listing reads holds per version, the report carries them
        _bucket(s3, DEST)
        until = datetime.now(UTC) + timedelta(days=400)
        for prefix, name, ages, marker, held in objects:
            key = prefix + name + ".json"
            options: dict[str, dict[str, Any]] = {"": {}, "hold": {"ObjectLockLegalHoldStatus": "ON"},
                                                  "lock": {"ObjectLockMode": "COMPLIANCE", "ObjectLockRetainUntilDate": until}}
            extra = options[held]
            for age in ages:
                with written_ago(age):
                    s3.put_object(Bucket=SOURCE, Key=key, Body=b"{}", **extra)
            if marker is not None:
                with written_ago(min(marker, *ages)):
                    s3.delete_object(Bucket=SOURCE, Key=key)
        write_report(s3, SOURCE, DEST, "all", datetime.now(UTC), n_files=n_files, seed=seed, file_format=file_format)
        listed_actions, listed = _plan(Aws(), _store("billing", False))
        saved = rows_module.SPILL_ROWS
        rows_module.SPILL_ROWS = limit  # small limits make every report spill runs and merge them
        try:
            report_actions, reported = _plan(Aws(), _store("billing", True))
        finally:
            rows_module.SPILL_ROWS = saved
        assert reported.errors == [] and reported.inventory is not None
        assert _targets(report_actions) == _targets(listed_actions)
        # the same batches; inside one, versions stamped in the same millisecond have no order a report can tell
        assert [sorted(map(tuple, a["objects"])) for a in report_actions] == \
            [sorted(map(tuple, a["objects"])) for a in listed_actions]
        assert reported.to_json() == {**listed.to_json(), "inventory": reported.inventory}


def test_data_file_formats_round_trip_through_pyarrow() -> None:
    """The helper's ORC and Parquet files hold AWS's types (so the tests above read what AWS writes)."""
    import pyarrow.orc as orc
    import pyarrow.parquet as pq

    row = {f: "" for f in FIELDS} | {"Bucket": "b", "Key": "a b+c.json", "VersionId": "v", "IsLatest": "true",
                                     "IsDeleteMarker": "false", "Size": "7", "LastModifiedDate": "2020-01-02T03:04:05.678Z"}
    for fmt, read in (("Parquet", lambda b: pq.read_table(__import__("io").BytesIO(b))),
                      ("ORC", lambda b: orc.read_table(__import__("io").BytesIO(b)))):
        table = read(data_file([row], FIELDS, fmt))
        got = table.to_pylist()[0]
        assert got["key"] == "a b+c.json" and got["is_latest"] is True and got["size"] == 7
        assert got["last_modified_date"] == datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
        assert str(table.schema.field("last_modified_date").type).startswith("timestamp[")
