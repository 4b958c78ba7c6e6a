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


MAX_BREAKS = 5  # breaks reported one by one; beyond that, counted


def check_chain(data: bytes, name: str = "ledger.jsonl", keep_entries: bool = False) -> ChainResult:
    """Every line parses as a JSON object, seq runs 0, 1, 2, ... and each prev matches.

    A break is reported once, where it happens, with how many lines it cuts off from the
    start of the ledger: one missing line is one failure, not one per line after it. The
    lines after a break are then checked against each other, so a second, separate break
    (another edit) is reported too.
    """
    result = ChainResult()
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # the file ends with a newline
    total = len(raw_lines)
    prev, prev_seq = GENESIS, -1
    breaks = 0
    for number, raw in enumerate(raw_lines, start=1):
        result.lines += 1
        problems: list[str] = []
        seq: Any = None
        try:
            entry = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            entry, problems = None, ["not valid JSON"]
        if entry is not None and not isinstance(entry, dict):
            problems.append("not a JSON object")
        elif isinstance(entry, dict):
            seq = entry.get("seq")
            if seq != prev_seq + 1:  # against the line before it, so one gap is one break
                problems.append(f"seq is {seq!r}, expected {prev_seq + 1} (lines missing, added or reordered)")
            if entry.get("prev") != prev:
                problems.append("prev does not match the SHA-256 of the line before")
            if keep_entries:
                result.entries.append(entry)
        if problems:
            breaks += 1
            if breaks <= MAX_BREAKS:
                rest = total - number + 1
                result.failures.append(
                    f"{name} line {number}: {'; '.join(problems)}: the chain is broken here, so lines {number}-{total} "
                    f"({rest} line{'s' if rest != 1 else ''}) are no longer tied to the start of the ledger")
        prev = hashlib.sha256(raw).hexdigest()
        prev_seq = seq if isinstance(seq, int) else number - 1
    if breaks > MAX_BREAKS:
        result.failures.append(f"{name}: {breaks - MAX_BREAKS} more break(s) after these {MAX_BREAKS}")
    result.head = prev
    return result


def check_file(path: Path, keep_entries: bool = False) -> ChainResult:
    return check_chain(path.read_bytes(), path.name, keep_entries)
