"""The ledger's hash chain: each line carries the SHA-256 of the previous line's exact bytes.

Checked here from the bytes alone (no dependency on the retention engine), so an auditor's
`vigil verify` needs nothing but the pack.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64


@dataclass
class ChainResult:
    lines: int = 0
    head: str = GENESIS  # SHA-256 of the last line: what the next line would carry as prev
    failures: list[str] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def check_chain(data: bytes, name: str = "ledger.jsonl", keep_entries: bool = False) -> ChainResult:
    """Every line parses as a JSON object, seq runs 0, 1, 2, ... and each prev matches."""
    result = ChainResult()
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the file ends with a newline
    prev = GENESIS
    for number, raw in enumerate(raw_lines, start=1):
        where = f"{name} line {number}"
        result.lines += 1
        try:
            entry = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            result.failures.append(f"{where}: not valid JSON")
            prev = hashlib.sha256(raw).hexdigest()
            continue
        if not isinstance(entry, dict):
            result.failures.append(f"{where}: not a JSON object")
        else:
            if entry.get("seq") != number - 1:
                result.failures.append(f"{where}: seq is {entry.get('seq')!r}, expected {number - 1} (lines missing, added or reordered)")
            if entry.get("prev") != prev:
                result.failures.append(f"{where}: prev does not match the SHA-256 of the line before (the chain is broken here)")
            if keep_entries:
                result.entries.append(entry)
        prev = hashlib.sha256(raw).hexdigest()
    result.head = prev
    return result


def check_file(path: Path, keep_entries: bool = False) -> ChainResult:
    return check_chain(path.read_bytes(), path.name, keep_entries)
