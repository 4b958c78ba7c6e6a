"""Benchmark: what `verify.scope: dataset` adds to planning, per record, on this machine (no S3).

Realistic web logs (bench/anonymize_bench.py's generator) in objects of 1,000 records, every
record due. Timed in CPU seconds of this process, each figure in the same run:

* plan (object scope): what planning does for each object anyway: parse, decide, transform, judge
  k per object (`anonymize.rewrite`).
* first pass (dataset scope): the extra pass, parse, decide, transform and count the classes
  (`dataset_k.CountTask.version` + `Tally.add`), with no ladder and with a 9-node ladder.
* counting alone: `Tally.add` on records already transformed, against a bare
  `Counter(zip(ip, ts))` over the same records (the peer), and spilled to SQLite every 500
  classes (the worst case: a spill per object).
* with --spark: the same rows counted by Spark's `groupBy().count()` in local[2] (wall clock:
  the JVM's CPU is not this process's).

    .venv/bin/python bench/dataset_k_bench.py --records 1000000 [--spark]

The reads themselves (a second GET of every latest version) are not measured here: on S3 they
cost what planning's own reads cost (bench/RESULTS.md, retention). Prints figures; asserts nothing.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from vigil.retention.anonymize import rewrite  # noqa: E402
from vigil.retention.dataset_k import CountTask, Tally, record_keys  # noqa: E402
from vigil.retention.decide import Rules  # noqa: E402
from vigil.retention.kanon import nodes  # noqa: E402
from vigil.retention.model import Location, ObjectEntry, Version  # noqa: E402
from vigil.retention.records import parse  # noqa: E402
from vigil.retention.transforms import Anonymizer  # noqa: E402

from bench.anonymize_bench import cpu, web_logs  # noqa: E402
from bench.common import ROOT  # noqa: E402
from vigil.policy import load_policy  # noqa: E402

PER_OBJECT = 1_000
LADDER = {"ip": ["generalize_ip:16", "generalize_ip:8"], "ts": ["truncate_time:week", "truncate_time:month"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--spark", action="store_true")
    args = parser.parse_args()
    policy = load_policy(ROOT / "policy.yaml")
    store = next(s for s in policy.stores if s.name == "web-logs")
    category = policy.categories["usage_logs"]
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    data["categories"]["usage_logs"]["verify"]["ladder"] = LADDER
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "policy.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        laddered = load_policy(Path(folder) / "policy.yaml").categories["usage_logs"]
    as_of = datetime(2030, 1, 1, tzinfo=UTC)  # every record due
    rules = Rules.for_store(policy, store.name, category, as_of, {})
    key = bytes(32)
    lines = web_logs(args.records).splitlines(keepends=True)
    bodies = [b"".join(lines[i:i + PER_OBJECT]) for i in range(0, len(lines), PER_OBJECT)]

    def versions() -> list[Version]:
        out = []
        for i, body in enumerate(bodies):
            version = Version(f"web/{i}.jsonl", "v1", True, False, as_of)
            version.parsed = parse(body, version.key, "jsonl", store.timestamp_field, store.subject_field)
            out.append(version)
        return out

    n = len(lines)
    print(f"{n:,} records in {len(bodies):,} objects of {PER_OBJECT:,}; CPU seconds of this process")
    t_parse, parsed = cpu(versions)
    print(f"  parse alone (both passes pay it)          {t_parse:7.2f} s  {n / t_parse:>10,.0f} records/s")
    anonymizer = Anonymizer(category, key)
    t_plan, _ = cpu(lambda: [rewrite(rules, store, v, anonymizer, False, False) for v in parsed])
    print(f"  plan, object scope (decide+transform+k)   {t_plan:7.2f} s  {n / t_plan:>10,.0f} records/s")
    loc = Location(store.name, store.bucket, "us-east-1")
    for label, cat in (("no ladder", category), ("9-node ladder", laddered)):
        anon = Anonymizer(cat, key)
        task = CountTask(None, None, loc, store, Rules.for_store(policy, store.name, cat, as_of, {}), anon)

        def first_pass(task=task, anon=anon) -> Tally:
            tally = Tally(anon)
            for v in parsed:
                version, due, published = task.version(ObjectEntry(v.key, [v]))
                assert version is not None
                tally.add(anon, version, due, published)
            return tally
        t_first, tally = cpu(first_pass)
        print(f"  first pass, dataset scope ({label:13}) {t_first:7.2f} s  {n / t_first:>10,.0f} records/s"
              f"  ({len(tally.total[0]):,} classes at node 0)")  # type: ignore[attr-defined]

    transformed = [[anonymizer.record(r.fields or {}) for r in v.parsed.records] for v in parsed]  # type: ignore[union-attr]
    flat = [r for batch in transformed for r in batch]
    t_raw, raw = cpu(lambda: Counter(zip((str(r.get("ip")) for r in flat), (str(r.get("ts")) for r in flat), strict=True)))
    print(f"  count: bare Counter(zip(ip, ts))          {t_raw:7.2f} s  {n / t_raw:>10,.0f} records/s  ({len(raw):,} classes)")
    for label, spill in (("in memory", 10 ** 9), ("spilled every 500", 500)):
        def count(spill=spill) -> Tally:
            tally = Tally(anonymizer, spill)
            for v, records in zip(parsed, transformed, strict=True):
                tally.add(anonymizer, v, records, [])
            tally.below(anonymizer.k)
            tally.close()
            return tally
        t_count, _ = cpu(count)
        print(f"  count: Tally.add, {label:21}   {t_count:7.2f} s  {n / t_count:>10,.0f} records/s")
    if args.spark:
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F  # noqa: N812

        spark = SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false") \
            .config("spark.sql.shuffle.partitions", "4").getOrCreate()
        ladder = nodes(anonymizer)
        rows = [(i, d, *key) for batch in transformed for i, d, key in record_keys(anonymizer, ladder, batch, [])]
        start = time.perf_counter()
        frame = spark.createDataFrame(rows, ["node", "due", "q0", "q1"])
        classes = frame.groupBy("node", "q0", "q1").agg(F.count(F.lit(1)).alias("n"), F.sum("due").alias("d"))
        small = classes.where(F.col("n") < anonymizer.k).count()
        wall = time.perf_counter() - start
        print(f"  count: Spark groupBy().count(), local[2]  {wall:7.2f} s wall  {n / wall:>10,.0f} records/s  ({small:,} small classes)")
        spark.stop()


if __name__ == "__main__":
    main()
