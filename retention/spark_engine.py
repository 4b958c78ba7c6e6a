"""The Spark engine: the same plan, the same per-action code, scheduled by Spark.

The unit of work is one planned action (one object version, or one batch of versions to
delete); a gzip object cannot be split anyway. Spark only schedules, retries and collects:
each task builds its own boto3 clients (the endpoint and profile are passed to it) and runs
`Applier.execute`, the very function the local engine runs, and returns the outcome. The
driver keeps the ledger exactly as the local engine does: the intents of a batch are on
disk (fsync'd) before the batch is dispatched, the outcomes are written as it comes back,
so a driver killed mid-batch leaves intents that the next run resolves (resume.py).

Only the S3 actions go to the cluster; DynamoDB batches (one transaction per table at a
time) and recovery points are API calls on the driver, through the same Applier.
pyspark is imported here only, and only when this engine is chosen: it is `vigil[spark]`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from vigil.aws import Aws
from vigil.engines import ENGINES, SPARK
from vigil.errors import EnvironmentFailure, UsageError

from . import faults
from .apply import Applier, Stats, hashed_target

INSTALL_HINT = "pip install 'vigil[spark]'"
CLUSTER_ACTIONS = {"anonymize_object", "rewrite_object", "delete_versions"}
BATCH = 256  # actions per dispatch: enough to keep the executors busy, few enough to lose little on a kill


def check_engine(engine: str) -> str:
    """Exit 2 (nothing read, nothing changed) for an unknown engine, or Spark without pyspark."""
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r} (or VIGIL_RETAIN_ENGINE): expected one of {', '.join(ENGINES)}")
    if engine == SPARK:  # glue and emr-serverless run Spark on AWS: the driver needs no pyspark
        try:
            import pyspark  # noqa: F401 - only whether it is there; the JVM starts when the plan is applied
        except ImportError:
            raise UsageError(f"--engine spark needs pyspark, which is not installed: {INSTALL_HINT}") from None
    return engine


@dataclass(frozen=True)
class TaskSetup:
    """What a task needs to rebuild the driver's Applier on an executor (pickled to it)."""
    profile: str | None
    endpoint_url: str | None
    keys: Any  # RetentionKeys
    contexts: dict[str, tuple]  # store name -> (store, rules, anonymizer), as the local engine has them
    datasets: Any = None  # a Broadcast of (store, bucket) -> dataset-wide k judgement (dataset_k.py): sent once per executor


def _run_partition(setup: TaskSetup, rows: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[tuple[int, tuple]]:
    applier = Applier(Aws(profile=setup.profile, endpoint_url=setup.endpoint_url), setup.keys, None,
                      setup.contexts.__getitem__, workers=1, datasets=setup.datasets.value if setup.datasets else None)
    for index, action in rows:
        yield index, applier.execute(action)


def on_spark(sc, setup: TaskSetup, batch: list[dict[str, Any]]) -> Iterator[tuple[int, tuple]]:
    """(index in batch, outcome) for each action, run as Spark tasks (here, or inside a Glue/EMR job)."""
    run: Callable = lambda rows: _run_partition(setup, rows)  # noqa: E731 - a closure Spark pickles
    slices = max(1, min(len(batch), sc.defaultParallelism * 2))
    # collect(), not toLocalIterator(): that runs one job per partition, one after another, so a
    # batch used one core at a time. The results are a few small tuples per action.
    return iter(sc.parallelize(list(enumerate(batch)), slices).mapPartitions(run).collect())


def _batches(actions: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(actions)
    while batch := list(islice(it, size)):
        yield batch


class SparkApplier:
    """Runs the plan's actions as Spark tasks; the ledger and the counts stay on the driver."""

    def __init__(self, local: Applier, aws: Aws, contexts: dict[str, tuple], master: str = "local[*]",
                 batch: int = BATCH):
        self.local = local
        self.setup = TaskSetup(aws.session.profile_name if aws.endpoint_url is None else None,
                               aws.endpoint_url, local.keys, contexts)
        self.master = master
        self.batch = batch

    def run(self, actions: Iterable[dict[str, Any]]) -> Stats:
        from pyspark.sql import SparkSession  # lazily: pyspark is the optional `vigil[spark]`

        owned = SparkSession.getActiveSession() is None
        spark = SparkSession.builder.master(self.master).appName("vigil-retain").getOrCreate()
        if self.local.datasets:
            self.setup = replace(self.setup, datasets=spark.sparkContext.broadcast(self.local.datasets))
        try:
            driver_side: list[dict[str, Any]] = []
            for batch in _batches(actions, self.batch):
                cluster = [a for a in batch if a["action"] in CLUSTER_ACTIONS]
                driver_side += [a for a in batch if a["action"] not in CLUSTER_ACTIONS]
                if cluster:
                    self._dispatch(spark.sparkContext, cluster)
            self.local.run(driver_side)
        finally:
            if owned:
                spark.stop()
        return self.local.stats

    def _dispatch(self, sc, batch: list[dict[str, Any]]) -> None:
        targets = [hashed_target(action, self.local.keys) for action in batch]
        for action, target in zip(batch, targets, strict=True):
            self.local.ledger.write("intent", action, target)  # each on disk before any task starts
        faults.at("spark.after_intents")
        try:
            for index, result in on_spark(sc, self.setup, batch):
                self.local.record(batch[index], targets[index], tuple(result))
        except Exception as exc:  # a task died past Spark's retries (an executor lost, a worker killed)
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise EnvironmentFailure(
                f"a Spark job of the retention run failed ({first}); the actions it held stay in the ledger as "
                "intents without an outcome, and the next run resolves them against the stores and finishes the plan"
            ) from None
