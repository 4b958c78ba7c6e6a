"""`vigil iam-policy --discover-replicas` never prints a policy it could not complete.

Replicas are read live; when the endpoint cannot be reached the replicas would be missing
from the policy, so the command ends with exit 3 (the environment) and a plain message,
quickly, instead of retrying for half a minute and printing an incomplete policy.
"""
from __future__ import annotations

import contextlib
import io
import json
import socket
import time

import boto3

from tests.conftest import ROOT
from vigil.cli.main import main


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["iam-policy", "retain", "--policy", str(ROOT / "policy.yaml"), "--discover-replicas", *argv])
    return code, out.getvalue(), err.getvalue()


def _closed_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens once the probe is closed: connections are refused


def test_unreachable_endpoint_exits_3_quickly_and_prints_no_policy() -> None:
    started = time.monotonic()
    code, out, err = _run("--endpoint-url", f"http://127.0.0.1:{_closed_loopback_port()}")
    elapsed = time.monotonic() - started
    assert code == 3, err
    assert out == ""  # no incomplete policy on stdout
    assert "unreachable" in err and "Traceback" not in err
    assert elapsed < 15, f"took {elapsed:.1f} s (it used to retry every bucket for ~26 s)"


def test_remote_endpoints_refused_or_unreachable() -> None:
    code, out, err = _run("--endpoint-url", "http://s3.example.invalid")
    assert (code, out) == (2, "") and "plain http is accepted only for loopback" in err
    code, out, err = _run("--endpoint-url", "https://s3.example.invalid")
    assert (code, out) == (3, "") and "Traceback" not in err


def test_buckets_without_replication_or_not_created_still_give_a_policy(moto_server: str) -> None:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_server)
    s3.create_bucket(Bucket="example-billing")  # exists, no replication; the other stores do not exist yet
    code, out, err = _run("--endpoint-url", moto_server, "--account", "123456789012")
    assert code == 0, err
    assert "example-contacts does not exist yet" in err and "example-billing does not exist" not in err
    objects = {r for s in json.loads(out)["Statement"] if s["Sid"] == "StoreObjects" for r in s["Resource"]}
    assert "arn:aws:s3:::example-contacts/contacts/*" in objects
