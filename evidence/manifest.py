"""The pack's manifest (every file's SHA-256 and size), its Ed25519 signature, and verification.

`manifest.sig` holds the 64 raw signature bytes over the exact bytes of `manifest.json`, so
an auditor can also check it without Vigil:
`openssl pkeyutl -verify -pubin -inkey signing.pub -rawin -in manifest.json -sigfile manifest.sig`.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from vigil import safe_write
from vigil.errors import UsageError
from vigil.timestamps import iso_z

from . import chain
from .keys import Signer, fingerprint, load_public, public_from_b64

SCHEMA = "vigil.manifest/v1"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
NOT_COVERED = {MANIFEST, SIGNATURE}
CHUNK = 1 << 20


def is_ledger(path: str) -> bool:
    return PurePosixPath(path).name.endswith("ledger.jsonl")


def digest(path: Path) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    with os.fdopen(os.open(path, os.O_RDONLY | safe_write.NOFOLLOW), "rb") as handle:
        while block := handle.read(CHUNK):
            sha.update(block)
            size += len(block)
    return sha.hexdigest(), size


@dataclass
class PackListing:
    """What a pack folder holds, found without following any link (POSIX paths relative to the pack)."""

    files: list[str] = field(default_factory=list)  # regular files, except the manifest and its signature
    links: list[str] = field(default_factory=list)  # symbolic links, to files or folders, dangling or not
    other: list[str] = field(default_factory=list)  # neither file, folder nor link (a FIFO, a socket, a device)


def walk_pack(directory: Path) -> PackListing:
    """Packs never follow links: a linked folder is listed as a link, not entered."""
    listing = PackListing()
    for folder, dirnames, filenames in os.walk(directory, followlinks=False):
        base = Path(folder)
        for name in sorted(dirnames + filenames):
            path = base / name
            relative = path.relative_to(directory).as_posix()
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                listing.links.append(relative)
            elif stat.S_ISREG(mode):
                if relative not in NOT_COVERED:
                    listing.files.append(relative)
            elif not stat.S_ISDIR(mode):
                listing.other.append(relative)
    listing.files.sort()
    return listing


def pack_files(directory: Path) -> list[str]:
    """Every file in the pack, except the manifest and its signature; a link or special file is refused (exit 2)."""
    listing = walk_pack(directory)
    refused = listing.links + listing.other
    if refused:
        raise UsageError(f"{directory}: {', '.join(refused)}: symbolic link or special file in the pack; packs never "
                         "contain links (they could pull files from outside into signed, locked evidence): remove them")
    return listing.files


def build(directory: Path, run_id: str, tool_version: str, policy_sha256: str, signer: Signer | None,
          created_at: datetime | None = None) -> dict[str, Any]:
    files = []
    ledgers = []
    for relative in pack_files(directory):
        sha, size = digest(directory / relative)
        files.append({"path": relative, "sha256": sha, "size": size})
        if is_ledger(relative):
            result = chain.check_file(directory / relative)
            ledgers.append({"path": relative, "lines": result.lines, "head": result.head})
    signature = None
    if signer is not None:
        public = signer.public_key_raw()
        signature = {"algorithm": "Ed25519", "file": SIGNATURE, "public_key": base64.b64encode(public).decode(),
                     "fingerprint": fingerprint(public), "signer": signer.description}
    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "tool_version": tool_version,
        "policy_sha256": policy_sha256,
        "created_at": iso_z(created_at or datetime.now(UTC)),
        "signature": signature,
        "files": files,
        "ledgers": ledgers,
    }


def write(directory: Path, run_id: str, tool_version: str, policy_sha256: str, signer: Signer | None) -> list[Path]:
    """Write manifest.json (and manifest.sig when there is a signer); a stale signature is removed."""
    manifest = build(directory, run_id, tool_version, policy_sha256, signer)
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    manifest_path, signature_path = directory / MANIFEST, directory / SIGNATURE
    signature_path.unlink(missing_ok=True)  # removes a link itself, never its target
    safe_write.write_bytes(manifest_path, data)
    if signer is None:
        return [manifest_path]
    safe_write.write_bytes(signature_path, signer.sign(data))
    return [manifest_path, signature_path]


@dataclass
class VerifyResult:
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    signed: bool = False
    origin_proven: bool = False  # the signature checks out against a key the caller trusts, not the pack's own
    fingerprint: str = ""  # of the key the signature was checked with
    files_checked: int = 0
    ledger_lines: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def verify_pack(directory: str | os.PathLike[str], public_key: bytes | str | os.PathLike[str] | None = None) -> VerifyResult:
    """Check the signature, every digest, missing and extra files, and each ledger's hash chain.

    `public_key` is the auditor's own copy (raw 32 bytes, or a signing.pub file); without it the
    key recorded in the manifest is used, which proves integrity but not who signed.
    """
    directory = Path(directory)
    if public_key is not None and not isinstance(public_key, bytes):
        public_key = load_public(Path(public_key))
    result = VerifyResult()
    if not directory.is_dir():
        raise UsageError(f"{directory}: not a directory")
    listing = walk_pack(directory)
    for relative in listing.links:
        result.failures.append(f"{relative}: a symbolic link in the pack (not followed; packs never contain links)")
    for relative in listing.other:
        result.failures.append(f"{relative}: not a regular file (packs hold only files and folders)")
    manifest_path = directory / MANIFEST
    if MANIFEST in listing.links:
        return result
    if not manifest_path.is_file():
        result.failures.append(f"{MANIFEST} is missing: this is not an evidence pack, or its manifest was removed")
        return result
    data = manifest_path.read_bytes()
    try:
        manifest = json.loads(data)
        files = manifest["files"]
        assert isinstance(files, list)
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AssertionError):
        result.failures.append(f"{MANIFEST} is not a valid manifest (unreadable JSON or no file list)")
        return result
    _check_signature(directory, data, manifest, public_key, result)
    _check_files(directory, files, listing, result)
    return result


def _check_signature(directory: Path, data: bytes, manifest: dict, public_key: bytes | None, result: VerifyResult) -> None:
    recorded = manifest.get("signature")
    signature_path = directory / SIGNATURE
    if not recorded:
        result.failures.append("the pack is unsigned: its manifest records no signing key"
                               + (f" (yet {SIGNATURE} exists)" if signature_path.exists() else ""))
        return
    result.signed = True
    if signature_path.is_symlink():
        return  # reported as a link; never read through it
    if not signature_path.is_file():
        result.failures.append(f"{SIGNATURE} is missing: the manifest says the pack was signed")
        return
    try:
        recorded_key = public_from_b64(str(recorded.get("public_key", "")))
    except ValueError:
        result.failures.append(f"{MANIFEST}: the recorded public key is not a valid Ed25519 key")
        return
    if recorded.get("fingerprint") != fingerprint(recorded_key):
        result.failures.append(f"{MANIFEST}: the recorded fingerprint does not match the recorded public key")
    key = recorded_key
    if public_key is not None:
        key = public_key
        if fingerprint(public_key) != fingerprint(recorded_key):
            result.failures.append(
                f"the manifest names signing key {fingerprint(recorded_key)}, not the given key {fingerprint(public_key)}: "
                "the pack was not signed by the key you trust")
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature_path.read_bytes(), data)
    except InvalidSignature:
        result.failures.append(f"{SIGNATURE} does not verify: {MANIFEST} was altered, or signed with another key")
        return
    result.fingerprint = fingerprint(key)
    if public_key is not None and fingerprint(public_key) == fingerprint(recorded_key):
        result.origin_proven = True


def _safe(relative: Any) -> bool:
    if not isinstance(relative, str) or not relative:
        return False
    path = PurePosixPath(relative)
    return not path.is_absolute() and ".." not in path.parts and "\\" not in relative


def _under_link(relative: str, links: list[str]) -> bool:
    return any(relative == link or relative.startswith(f"{link}/") for link in links)


def _check_files(directory: Path, files: list, listing: PackListing, result: VerifyResult) -> None:
    present = set(listing.files)
    listed: set[str] = set()
    for entry in files:
        relative = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(relative, str) or not _safe(relative) or relative in NOT_COVERED:
            result.failures.append(f"{MANIFEST}: unsafe or invalid file entry {relative!r}")
            continue
        listed.add(relative)
        path = directory / relative
        if _under_link(relative, listing.links):
            continue  # reported as a link; never read through it
        if relative not in present:
            result.failures.append(f"{relative}: missing (listed in the manifest)")
            continue
        sha, size = digest(path)
        result.files_checked += 1
        if size != entry.get("size"):
            result.failures.append(f"{relative}: size is {size} bytes, the manifest says {entry.get('size')}")
        if sha != entry.get("sha256"):
            result.failures.append(f"{relative}: SHA-256 differs from the manifest (the file was changed)")
        if is_ledger(relative):
            ledger = chain.check_file(path)
            result.ledger_lines += ledger.lines
            result.failures.extend(ledger.failures)
    for relative in listing.files:
        if relative not in listed:
            result.failures.append(f"{relative}: extra file, not in the manifest")
