"""Ed25519 keys for signing evidence: generate a pair, load a signer (file, env, KMS), load a public key.

A signer is anything with `public_key_raw()` and `sign(data)`; the file signer holds the key
in memory, the KMS signer never sees the private key (AWS KMS `ECC_NIST_EDWARDS25519`,
`ED25519_SHA_512` over the raw message, which is a plain Ed25519 signature).
"""
from __future__ import annotations

import base64
import errno
import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vigil import safe_write
from vigil.errors import EnvironmentFailure, UsageError

ENV_VAR = "VIGIL_SIGNING_KEY"
KMS_PREFIX = "kms:"  # `--signing-key kms:<key id, ARN or alias>` signs with AWS KMS
PRIVATE_NAME = "signing.key"
PUBLIC_NAME = "signing.pub"
RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


class Signer(Protocol):
    @property
    def description(self) -> str: ...

    def public_key_raw(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


def fingerprint(public_raw: bytes) -> str:
    """SHA-256 of the 32 raw public key bytes, lowercase hex (what the manifest records)."""
    return hashlib.sha256(public_raw).hexdigest()


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(*RAW)


@dataclass
class FileSigner:
    key: Ed25519PrivateKey
    description: str

    def public_key_raw(self) -> bytes:
        return raw_public(self.key.public_key())

    def sign(self, data: bytes) -> bytes:
        return self.key.sign(data)


@dataclass
class KmsSigner:
    client: Any  # a boto3 KMS client
    key_id: str

    @property
    def description(self) -> str:
        return f"AWS KMS key {self.key_id}"

    _public: bytes | None = None

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(KeyId=self.key_id, **params)
        except (BotoCoreError, ClientError) as exc:
            raise EnvironmentFailure(f"KMS {operation} on {self.key_id} failed: {exc}") from None

    def public_key_raw(self) -> bytes:
        if self._public is None:  # asked once: the report and the manifest both record it
            der = self._call("get_public_key")["PublicKey"]
            key = serialization.load_der_public_key(der)
            if not isinstance(key, Ed25519PublicKey):
                raise UsageError(f"KMS key {self.key_id} is not an Ed25519 key (key spec ECC_NIST_EDWARDS25519 is needed)")
            self._public = raw_public(key)
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._call("sign", Message=data, MessageType="RAW", SigningAlgorithm="ED25519_SHA_512")["Signature"]


def generate(out_dir: Path) -> tuple[Path, Path]:
    """Write DIR/signing.key (PKCS#8 PEM, mode 0600) and DIR/signing.pub (mode 0644), whatever the umask.

    Refused (exit 2, nothing written) when either name exists in any form, a dangling
    symlink included. Each key is written to a temporary file with its final mode, then
    hard-linked to its name (a link never replaces an existing name, so a file or link that
    appears meanwhile is not overwritten); a failure removes whatever this call created.
    """
    safe_write.ensure_dir(out_dir, "--out")
    private_path, public_path = out_dir / PRIVATE_NAME, out_dir / PUBLIC_NAME
    existing = [str(p) for p in (private_path, public_path) if os.path.lexists(p)]
    if existing:
        raise UsageError(f"refusing to overwrite {', '.join(existing)} (a file or link of that name exists)")
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    created: list[Path] = []
    try:
        for path, data, mode in ((private_path, private_pem, 0o600), (public_path, public_pem, 0o644)):
            _place(path, data, mode, created)
    except FileExistsError as exc:
        _remove(created)
        raise UsageError(f"refusing to overwrite {exc.filename or out_dir}: it appeared while the keys were written") from None
    except OSError as exc:
        _remove(created)
        raise EnvironmentFailure(f"--out {out_dir}: cannot write the keys ({exc.strerror or exc}); nothing was kept") from None
    return private_path, public_path


def _place(path: Path, data: bytes, mode: int, created: list[Path]) -> None:
    """Write `data` to a temporary file with `mode` (0600 from the first byte), then link it to `path`."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    created.append(tmp)
    with os.fdopen(fd, "wb") as handle:
        os.fchmod(handle.fileno(), mode)  # explicit: the umask plays no part
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "exists", str(path))
    try:
        os.link(tmp, path, follow_symlinks=False)  # fails on any existing name, a dangling link included
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "exists", str(path)) from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP):
            raise
        os.rename(tmp, path)  # a file system without hard links: checked just above instead
        created[created.index(tmp)] = path
        return
    created.append(path)
    tmp.unlink()
    created.remove(tmp)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def load_private(path: Path) -> FileSigner:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"signing key {path}: cannot read ({exc.strerror})") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UsageError(f"signing key {path}: not an unencrypted PEM private key (make one with 'vigil keys generate')") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"signing key {path}: not an Ed25519 key")
    return FileSigner(key, f"key file {path.name}")


def load_public(path: Path) -> bytes:
    """The raw 32 bytes of an Ed25519 public key from a PEM file (or a file of exactly 32 raw bytes)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"public key {path}: cannot read ({exc.strerror})") from None
    if len(data) == 32:
        return data
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UsageError(f"public key {path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"public key {path}: not an Ed25519 key")
    return raw_public(key)


def public_from_b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


def load_signer(spec: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None,
                kms_client: Callable[[], Any] | None = None) -> Signer | None:
    """The signer named by `spec` (a key file or `kms:<key>`), else by $VIGIL_SIGNING_KEY; None when neither is set."""
    env = os.environ if env is None else env
    text = os.fspath(spec) if spec else env.get(ENV_VAR, "")
    if not text:
        return None
    if text.startswith(KMS_PREFIX):
        key_id = text[len(KMS_PREFIX):]
        if not key_id:
            raise UsageError("signing key 'kms:' names no KMS key (use kms:<key id, ARN or alias>)")
        if kms_client is None:
            import boto3  # only when KMS signing is asked for

            client = boto3.client("kms")
        else:
            client = kms_client()
        return KmsSigner(client, key_id)
    return load_private(Path(text))
