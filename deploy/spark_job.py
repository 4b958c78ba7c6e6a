"""The script of the Glue job / EMR Serverless job run (infra/components/spark_job.py), in two modes:

* `--vigil-slice s3://... --vigil-slice-sha256 HEX` (what `vigil retain --engine glue|emr-serverless`
  starts): run the plan slice the driver uploaded, with the Spark engine's task function, and
  write the outcomes next to it (vigil.retention.cluster_job). The driver keeps the ledger.
* `--vigil-args '[...]'` (a scheduled job run with no driver elsewhere): `vigil retain --engine
  spark` on the cluster's own SparkSession, ledger and all.

Glue passes its own arguments (--JOB_NAME, --JOB_RUN_ID, ...) next to the job's; Vigil's come
as one JSON list in --vigil-args, so nothing of Glue's reaches Vigil's parser. The session is
made here, before Vigil runs, so the engine uses the cluster's (its master comes from
spark-submit) instead of starting a local one.
"""
from __future__ import annotations

import json
import sys


def retain_argv(argv: list[str]) -> list[str]:
    """`vigil retain --engine spark` with the arguments --vigil-args names (a JSON list of strings)."""
    try:
        given = json.loads(argv[argv.index("--vigil-args") + 1])
    except (ValueError, IndexError):
        raise SystemExit("spark_job.py: expected --vigil-args '[\"--policy\", \"...\", ...]'") from None
    if not isinstance(given, list) or not all(isinstance(a, str) for a in given):
        raise SystemExit("spark_job.py: --vigil-args must be a JSON list of strings")
    return ["retain", "--engine", "spark", *given]


SLICE_FLAGS = ("--vigil-slice", "--vigil-slice-sha256", "--vigil-region")


def slice_args(argv: list[str]) -> tuple[str, str, str] | None:
    """(slice URI, its SHA-256, the bucket's region) in slice mode; None in --vigil-args mode."""
    if "--vigil-slice" not in argv:
        return None
    try:
        uri, sha256, region = (argv[argv.index(flag) + 1] for flag in SLICE_FLAGS)
    except (ValueError, IndexError):
        raise SystemExit("spark_job.py: --vigil-slice needs s3://BUCKET/KEY, --vigil-slice-sha256 HEX and --vigil-region R") from None
    return uri, sha256, region


def run_slice(spark, uri: str, sha256: str, region: str, endpoint_url: str | None = None) -> int:
    """The slice's actions as Spark tasks on this session; returns the outcomes written."""
    from vigil.retention.cluster_job import run_slice as run
    from vigil.retention.spark_engine import on_spark

    from vigil.aws import Aws

    return run(Aws(endpoint_url=endpoint_url), uri, sha256, region,
               lambda setup, batch: on_spark(spark.sparkContext, setup, batch), share=spark.sparkContext.broadcast)


def main(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    from vigil.cli.main import main as vigil
    from vigil.errors import VigilError

    spark = SparkSession.builder.appName("vigil-retain").getOrCreate()
    given = slice_args(argv)
    if given is None:
        return vigil(retain_argv(argv))
    try:
        written = run_slice(spark, *given)
    except VigilError as exc:  # a bad slice or key: the job fails with the reason, and the driver reports it
        raise SystemExit(f"spark_job.py: {exc}") from None
    print(f"spark_job.py: {written} outcomes written next to the slice")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
