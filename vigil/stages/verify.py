"""The verify stage: check an evidence pack offline (signature, digests, files, ledger chain)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vigil.errors import ExitCode, UsageError
from vigil.evidence import keys
from vigil.evidence.manifest import VerifyResult, verify_pack


@dataclass(frozen=True)
class VerifyOptions:
    directory: str | Path
    public_key: str | Path | bytes | None = None  # the signer's signing.pub (or its 32 raw bytes); without it only integrity is proven


@dataclass(frozen=True)
class VerifyOutcome:
    directory: Path
    result: VerifyResult

    @property
    def exit_code(self) -> int:
        return ExitCode.OK if self.result.ok else ExitCode.FAILED


def verify(options: VerifyOptions) -> VerifyOutcome:
    directory = Path(options.directory)
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory")
    public = options.public_key
    if public is not None and not isinstance(public, bytes):
        public = keys.load_public(Path(public))
    return VerifyOutcome(directory, verify_pack(directory, public))
