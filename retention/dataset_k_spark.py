"""Dataset-wide k-anonymity's first pass on Spark (`--engine spark`): the same count as
dataset_k.count_local, with the reads in Spark tasks and the class sizes by groupBy().count().

Each task reads its objects with boto3 and runs the unchanged record parser and decision code
(dataset_k.CountTask), emitting one row per record and ladder node: (node, due, class key). Only
the small classes of the chosen node and per-node sums come back to the driver, so the driver
never holds the dataset's classes. pyspark is imported only here, and only for this engine.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from vigil.aws import Aws

from .dataset_k import ClassKey, CountTask, DatasetJudgement, decide, latest_only, record_keys, version_digest
from .inventory import _read_entry, listed_objects
from .kanon import nodes
from .model import ObjectEntry

COUNTED, ROW = 0, 1
CHUNK = 50_000  # listed objects handed to Spark at a time


def _count_partition(task: CountTask, entries: Iterable[ObjectEntry]) -> Iterator[tuple[Any, ...]]:
    aws = Aws(profile=task.profile, endpoint_url=task.endpoint_url)
    ladder = nodes(task.anonymizer)
    for entry in entries:
        _read_entry(aws, task.loc, task.store, entry, True)
        version, due, published = task.version(entry)
        if version is None:
            continue
        yield COUNTED, version_digest(version.key, version.version_id)
        for index, is_due, key in record_keys(task.anonymizer, ladder, due, published):
            yield (ROW, index, is_due, *key)


def judge_spark(task: CountTask, aws: Aws, master: str, entries: Iterable[ObjectEntry] | None) -> DatasetJudgement:
    from pyspark import SparkContext
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F  # noqa: N812 - Spark's own idiom
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType

    listed = latest_only(entries if entries is not None else listed_objects(aws, task.loc, task.store.prefix))
    # Whether this call starts Spark (and so stops it): the active session is per thread, and stores are
    # planned on their own threads, so the process-wide context is asked instead.
    owned = SparkContext._active_spark_context is None
    spark = SparkSession.builder.master(master).appName("vigil-retain-dataset-k").getOrCreate()
    try:
        sc = spark.sparkContext
        # The listing goes to Spark a chunk at a time (each chunk is pickled into the JVM as it is made), so
        # the driver's Python never holds every object of the bucket.
        chunks = [sc.parallelize(chunk, max(1, min(len(chunk), sc.defaultParallelism * 2)))
                  for chunk in iter(lambda: list(islice(listed, CHUNK)), [])]
        entries_rdd = sc.union(chunks) if chunks else sc.emptyRDD()
        results = entries_rdd.mapPartitions(lambda part: _count_partition(task, part)).cache()
        counted = frozenset(results.filter(lambda r: r[0] == COUNTED).map(lambda r: r[1]).collect())
        quasi = [f"q{i}" for i in range(len(task.anonymizer.quasi))]
        schema = StructType([StructField("node", IntegerType()), StructField("due", IntegerType()),
                             *(StructField(q, StringType()) for q in quasi)])
        rows = spark.createDataFrame(results.filter(lambda r: r[0] == ROW).map(lambda r: r[1:]), schema)
        classes = rows.groupBy("node", *quasi).agg(F.count(F.lit(1)).alias("n"), F.sum("due").alias("d")).cache()
        k = task.anonymizer.k
        totals = classes.where(F.col("node") == 0).agg(F.sum("d"), F.sum("n")).first()
        due, everything = (int(totals[0] or 0), int(totals[1] or 0)) if totals else (0, 0)
        small = classes.where((F.col("n") < k) & (F.col("d") > 0))
        below = {int(r["node"]): (int(r["s"]), int(r["c"]))
                 for r in small.groupBy("node").agg(F.sum("d").alias("s"), F.count(F.lit(1)).alias("c")).collect()}

        def small_classes(index: int) -> frozenset[ClassKey]:
            return frozenset(tuple(r) for r in small.where(F.col("node") == index).select(*quasi).collect())

        judgement = decide(task.anonymizer, task.loc.bucket, nodes(task.anonymizer), due, everything - due, below,
                           small_classes, counted)
        classes.unpersist()
        results.unpersist()
        return judgement
    finally:
        if owned:
            spark.stop()
