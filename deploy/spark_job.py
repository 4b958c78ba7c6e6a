"""The script of the Glue job / EMR Serverless job run (infra/components/spark_job.py): `vigil
retain --engine spark` on the cluster's own SparkSession.

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


def main(argv: list[str]) -> int:
    from pyspark.sql import SparkSession

    from vigil.cli.main import main as vigil

    SparkSession.builder.appName("vigil-retain").getOrCreate()
    return vigil(retain_argv(argv))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
