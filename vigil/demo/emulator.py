"""An embedded AWS emulator: moto's server app on a free loopback port, in a thread.

This mirrors moto's ThreadedMotoServer with one change: an API moto does not implement
answers HTTP 501 `NotImplemented` (which AWS SDKs do not retry and Vigil reports as "not
implemented by this endpoint") instead of a 500 the SDK would retry for a minute.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

DEMO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "demo-access-key",
    "AWS_SECRET_ACCESS_KEY": "demo-secret-key",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _not_implemented(exc: NotImplementedError) -> Any:
    from flask import Response

    message = str(exc) or "not implemented by the emulator"
    body = f"<ErrorResponse><Error><Code>NotImplemented</Code><Message>{message}</Message></Error></ErrorResponse>"
    return Response(body, status=501, headers={"x-amzn-ErrorType": "NotImplemented", "Content-Type": "application/xml"})


def _no_route(exc: Exception) -> Any:
    from flask import request

    return _not_implemented(NotImplementedError(f"no such API in the emulator ({request.method} {request.path})"))


def _create_app(service: str) -> Any:
    from moto.moto_server.werkzeug_app import create_backend_app

    app = create_backend_app(service)  # type: ignore[arg-type]  # moto types the name as a Literal of its services
    app.register_error_handler(NotImplementedError, _not_implemented)
    app.register_error_handler(404, _no_route)  # a URL no emulated API answers: an unimplemented API
    return app


@contextmanager
def conditions_met() -> Iterator[None]:
    """moto judges a bucket policy's conditions without the request's context, so every
    conditional statement matches and the TLS and MFA denies refuse every object read and
    write. While the emulator runs, conditional statements are left out of moto's judgement:
    every request counts as made over TLS 1.2 with MFA. Unconditional statements still apply."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    original = FakeBucket.get_permission

    def get_permission(bucket: Any, action: str, resource: str) -> Any:
        if bucket.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(bucket.policy.decode())
        statements = document.get("Statement", [])
        kept = [s for s in (statements if isinstance(statements, list) else [statements]) if "Condition" not in s]
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign,assignment]  # patched for the demo's lifetime only
    try:
        yield
    finally:
        FakeBucket.get_permission = original  # type: ignore[method-assign]


@contextmanager
def emulator(host: str = "127.0.0.1") -> Iterator[str]:
    """Run moto on loopback for the duration of the block; yields its endpoint URL."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # no request log on the demo's console
    server = make_server(host, free_port(host), DomainDispatcherApplication(_create_app), threaded=True,
                         request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="vigil-emulator", daemon=True)
    thread.start()
    url = f"http://{host}:{server.server_port}"
    _reset(url)  # moto keeps its state per process: start empty, leave nothing behind
    try:
        with conditions_met():
            yield url
    finally:
        _reset(url)
        server.shutdown()
        thread.join(timeout=10)


def _reset(url: str) -> None:
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).read()


def set_root_mfa(account_id: str) -> None:
    """Root MFA is set in the console; no API can do it, so the demo sets it in the emulator's state.

    The emulator runs in this process, so its IAM backend is reachable here.
    """
    from moto.iam.models import iam_backends

    iam_backends[account_id]["aws"].account_summary._account_mfa_enabled = 1


def load_aws_managed_policies(account_id: str, arns: set[str]) -> None:
    """moto ships AWS's managed policies but loads none unless told to (slow): load just these."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data
    from moto.iam.models import AWSManagedPolicy, iam_backends

    backend = iam_backends[account_id]["aws"]
    for name, data in json.loads(aws_managed_policies_data).items():
        policy = AWSManagedPolicy.from_data(name, account_id, "us-east-1", data)
        if policy.arn in arns:
            backend.managed_policies[policy.arn] = policy
