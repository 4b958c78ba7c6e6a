"""Named points in the apply path where tests inject a crash or a concurrent write.

Inert in normal runs: `at(name)` does nothing unless VIGIL_CRASH_AT names the point (the
process then dies at once, as a SIGKILL would leave it: no outcome, no cleanup) or a test
installed a hook for it (`hooks[name] = fn`, called with the point's context). Points:
  rewrite.before_put         the raw version is read; the new one is not written yet
  rewrite.before_raw_delete  the new version is written; the raw one is not deleted yet
  spark.after_intents        the Spark driver has a batch's intents on disk; no task has run yet
  cluster.before_start       the slice is uploaded and its job line written; start_job_run not called yet
  cluster.after_start        the job run is started; its run id is not in the ledger yet
  cluster_job.after_part     the job has written a results part (the job dies midway)
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

hooks: dict[str, Callable[..., None]] = {}


def at(name: str, **context: Any) -> None:
    if os.environ.get("VIGIL_CRASH_AT") == name:
        os._exit(137)
    hook = hooks.get(name)
    if hook is not None:
        hook(**context)
