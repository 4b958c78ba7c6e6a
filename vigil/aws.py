"""One place that makes boto3 clients: endpoint, profile, retries, connection pools."""
from __future__ import annotations

import ipaddress
import threading
from typing import Any
from urllib.parse import urlparse, urlsplit, urlunsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from .errors import EnvironmentFailure, UsageError

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden", "403"}
NOT_IMPLEMENTED = {"NotImplemented", "NotImplementedException", "InvalidAction", "UnknownOperationException", "UnsupportedOperation", "501"}


def validate_endpoint(url: str) -> str:
    """Accept https anywhere, plain http only to loopback (a local emulator)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise UsageError(f"--endpoint-url {url!r}: expected http(s)://host[:port]")
    if parsed.scheme == "http" and not is_loopback(parsed.hostname):
        raise UsageError(
            f"--endpoint-url {url!r}: plain http is accepted only for loopback hosts "
            "(127.0.0.0/8, ::1, localhost); use https for anything else"
        )
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _strip_account_host(request: Any, **_: Any) -> None:
    """s3control endpoint rules put the account id in front of the host even for a custom
    endpoint (`123456789012.127.0.0.1`), which no emulator answers; drop it before signing."""
    parts = urlsplit(request.url)
    first, _, rest = parts.netloc.partition(".")
    if rest and len(first) == 12 and first.isdigit():
        request.url = urlunsplit(parts._replace(netloc=rest))


class Aws:
    """Thread-safe cache of clients per (service, region), all sharing one session and config."""

    def __init__(self, profile: str | None = None, endpoint_url: str | None = None, max_pool: int = 32,
                 session: boto3.Session | None = None):
        """`session`: a ready session (another account's, on assumed-role credentials: vigil.accounts.sessions)."""
        try:
            self.session = session or boto3.Session(profile_name=profile)
        except botocore.exceptions.ProfileNotFound as exc:
            raise EnvironmentFailure(f"AWS profile not found: {exc}") from None
        self.endpoint_url = validate_endpoint(endpoint_url) if endpoint_url else None
        self.config = Config(
            retries={"mode": "adaptive", "max_attempts": 8},
            max_pool_connections=max_pool,
            connect_timeout=5,
            read_timeout=60,
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._account_id: str | None = None

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:
            if key not in self._clients:
                config = self.config
                if service == "s3control":
                    # botocore prefixes s3control hosts with the account id, which breaks a loopback endpoint.
                    config = config.merge(Config(inject_host_prefix=self.endpoint_url is None))
                client = self.session.client(service, region_name=region, endpoint_url=self.endpoint_url, config=config)
                if service == "s3control" and self.endpoint_url:
                    client.meta.events.register("before-sign.s3-control", _strip_account_host)
                self._clients[key] = client
            return self._clients[key]

    def account_id(self, region: str) -> str:
        """Who we are; the pre-flight call that turns a broken environment into exit 3."""
        if self._account_id is None:
            sts = self.session.client(
                "sts",
                region_name=region,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=3, read_timeout=10),
            )
            try:
                self._account_id = sts.get_caller_identity()["Account"]
            except botocore.exceptions.NoCredentialsError:
                raise EnvironmentFailure("no AWS credentials found (environment, profile or instance role)") from None
            except botocore.exceptions.EndpointConnectionError as exc:
                raise EnvironmentFailure(f"AWS endpoint unreachable: {exc}") from None
            except botocore.exceptions.ClientError as exc:
                raise EnvironmentFailure(f"AWS rejected the credentials: {exc}") from None
            except botocore.exceptions.BotoCoreError as exc:
                raise EnvironmentFailure(f"cannot reach AWS: {exc}") from None
        return self._account_id


def describe_error(api: str, exc: Exception) -> str:
    """A sentence naming the API and why it failed (denied, not implemented, throttled, ...)."""
    if isinstance(exc, botocore.exceptions.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", "")) or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        message = exc.response.get("Error", {}).get("Message", "") or ""
        if code in DENIED:
            return f"{api} was denied ({code}); grant it to the checking role"
        if code in NOT_IMPLEMENTED or "not yet implemented" in message.lower() or "not implemented" in message.lower():
            return f"{api} is not implemented by this endpoint ({code or 'no code'})"
        if code in ("Throttling", "ThrottlingException", "TooManyRequestsException", "SlowDown", "RequestLimitExceeded"):
            return f"{api} was throttled past the retry limit ({code})"
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status and int(status) >= 500:
            detail = "" if code in ("", str(status)) else f" {code}"
            return f"{api} failed on the server side (HTTP {status}{detail}); the endpoint may not implement it"
        return f"{api} failed: {code}: {message}".rstrip(": ")
    if isinstance(exc, NotImplementedError):
        return f"{api} is not implemented by this endpoint"
    if isinstance(exc, botocore.exceptions.EndpointConnectionError):
        return f"{api} could not reach the endpoint: {exc}"
    if isinstance(exc, botocore.exceptions.BotoCoreError):
        return f"{api} failed: {exc}"
    return f"{api} failed: {type(exc).__name__}: {exc}"
