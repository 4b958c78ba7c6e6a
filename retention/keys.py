"""Keys the retention engine needs: the pseudonymization key and the evidence (keyed-hash) key.

Both are read before anything changes; a key that cannot be found is bad input (exit 2).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vigil.errors import UsageError
from vigil.policy import Policy
from vigil.policy.models import KeySource


@dataclass(frozen=True)
class RetentionKeys:
    evidence: bytes
    pseudonym: bytes | None = None

    def hash(self, value: str) -> str:
        """Keyed hash that stands in for an object key or subject id in plans and ledgers: HMAC-SHA256
        (RFC 2104) from the key's padded inner and outer states, computed once; copying them is half
        the cost of hmac.new per call, and a plan hashes every key it reads."""
        inner, outer = self._pads
        inner = inner.copy()
        inner.update(value.encode("utf-8"))
        outer = outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def __getstate__(self) -> dict[str, Any]:  # hash states do not pickle (Spark ships keys to its tasks)
        return {name: value for name, value in self.__dict__.items() if name != "_pads"}

    @cached_property
    def _pads(self) -> tuple[Any, Any]:
        key = self.evidence if len(self.evidence) <= 64 else hashlib.sha256(self.evidence).digest()
        key = key.ljust(64, b"\0")
        return (hashlib.sha256(bytes(b ^ 0x36 for b in key)), hashlib.sha256(bytes(b ^ 0x5C for b in key)))

    @property
    def fingerprint(self) -> str:
        """Names the evidence key without revealing it: a ledger's hashes are only comparable under one key."""
        return self.hash("vigil evidence key fingerprint")[:16]


def derive_evidence_key(pseudonym: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vigil evidence").derive(pseudonym)


def _b64(text: str | bytes, where: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise UsageError(f"{where}: not valid base64") from None


def read_key(source: KeySource, policy: Policy, aws=None, label: str = "key") -> bytes:
    """The decoded key bytes from env (base64), file (raw or base64) or a KMS-encrypted data key."""
    if source.source == "env":
        value = os.environ.get(source.name or "")
        if not value:
            raise UsageError(f"keys.{label}: environment variable {source.name} is not set; nothing was changed")
        key = _b64(value.strip(), f"keys.{label} (${source.name})")
    elif source.source == "file":
        try:
            raw = Path(source.path or "").read_bytes()
        except OSError as exc:
            raise UsageError(f"keys.{label}: cannot read {source.path}: {exc.strerror or exc}; nothing was changed") from None
        try:
            key = base64.b64decode(raw.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = raw
    else:
        if aws is None:
            raise UsageError(f"keys.{label}: a KMS key source needs AWS access")
        region = source.region or policy.regions.primary
        try:
            key = aws.client("kms", region).decrypt(CiphertextBlob=_b64(source.ciphertext or "", f"keys.{label}.ciphertext"))["Plaintext"]
        except UsageError:
            raise
        except Exception as exc:  # denied, unknown key, unreachable: the key is unusable either way
            raise UsageError(f"keys.{label}: KMS could not decrypt the data key: {exc}; nothing was changed") from None
    if len(key) < 16:
        raise UsageError(f"keys.{label}: the key is {len(key)} bytes; at least 16 are needed")
    return key


def needs_pseudonym_key(policy: Policy) -> bool:
    return any(t.name == "pseudonymize" for c in policy.categories.values() for t in (c.anonymize or {}).values())


def load_keys(policy: Policy, aws=None) -> RetentionKeys:
    """Read the keys or raise UsageError (exit 2) before anything changes."""
    pseudonym = None
    if policy.keys.pseudonymize is not None:
        pseudonym = read_key(policy.keys.pseudonymize, policy, aws, "pseudonymize")
    elif needs_pseudonym_key(policy):
        raise UsageError("the policy uses 'pseudonymize' but has no keys.pseudonymize; nothing was changed")
    if policy.keys.evidence is not None:
        evidence = read_key(policy.keys.evidence, policy, aws, "evidence")
    elif pseudonym is not None:
        evidence = derive_evidence_key(pseudonym)
    else:
        raise UsageError("no evidence key: set keys.evidence or keys.pseudonymize in the policy; nothing was changed")
    return RetentionKeys(evidence=evidence, pseudonym=pseudonym)
