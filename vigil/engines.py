"""What can apply a retention plan, by name: one list, read by the flags that choose one
(`vigil retain --engine/--executor`, `vigil iam-policy`), the policy model, the engines and
the IAM policy that grants each its calls. Core (imports nothing of Vigil's) so every layer can."""
from __future__ import annotations

LOCAL, SPARK, GLUE, EMR = "local", "spark", "glue", "emr-serverless"
ENGINES = (LOCAL, SPARK, GLUE, EMR)  # --engine: who runs the plan's S3 actions
CLUSTER_ENGINES = (GLUE, EMR)  # a job on AWS runs Spark (retention/cluster_engine.py); the driver needs no pyspark

BATCH_OPERATIONS = "batch-operations"
EXECUTORS = (LOCAL, BATCH_OPERATIONS)  # --executor, or a store's `executor:`: who deletes at scale
