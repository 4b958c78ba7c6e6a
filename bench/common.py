"""What the bench scripts share: the repository root, a policy header, and the environment of
the `vigil` processes they measure (fake credentials, a fresh evidence key, no AWS config)."""
from __future__ import annotations

import base64
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POLICY_HEAD = """
version: 1
organization: Bench
regions: {primary: us-east-1, backup: us-west-2, allowed: [us-east-1, us-west-2]}
keys:
  evidence: {source: env, name: VIGIL_EVIDENCE_KEY}
"""


def vigil_env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    out.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               VIGIL_EVIDENCE_KEY=base64.b64encode(os.urandom(32)).decode(), PYTHONPATH=str(ROOT))
    for name in ("MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"):  # glibc allocator settings for the measured process
        if os.environ.get("BENCH_" + name):
            out[name] = os.environ["BENCH_" + name]
    if os.environ.get("BENCH_TRACEMALLOC"):
        out["BENCH_TRACEMALLOC"] = os.environ["BENCH_TRACEMALLOC"]
    return out
