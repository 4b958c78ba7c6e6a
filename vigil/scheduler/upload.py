"""Copy a finished run folder to S3 (`--upload s3://bucket/prefix`): prefix/<run-id>/<file>."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from vigil.aws import Aws
from vigil.errors import UsageError
from vigil.policy import load_policy

if TYPE_CHECKING:
    from vigil.scheduler.pipeline import JobOptions


def parse_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix -> ("bucket", "some/prefix/"); exit 2 on anything else."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise UsageError(f"{url!r} is not an S3 location (expected s3://bucket/prefix)")
    prefix = parsed.path.strip("/")
    return parsed.netloc, (prefix + "/" if prefix else "")


def upload_folder(options: "JobOptions", run_dir: Path, run_id: str) -> int:
    bucket, prefix = parse_s3_url(options.upload or "")
    region = options.regions[0] if options.regions else load_policy(options.policy).regions.primary
    s3 = Aws(profile=options.profile, endpoint_url=options.endpoint_url).client("s3", region)
    count = 0
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        key = f"{prefix}{run_id}/{path.relative_to(run_dir).as_posix()}"
        s3.upload_file(str(path), bucket, key)
        count += 1
    return count
