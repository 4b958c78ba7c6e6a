"""The anonymization transforms of cli.md, exactly, and a per-category record anonymizer."""
from __future__ import annotations

import hmac
import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from vigil.policy.models import Category, Transform

REDACTED = "[REDACTED]"
_ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def generalize_ip(value: Any) -> str:
    """IPv4 -> /24, IPv6 -> /48 network in CIDR form; anything unparsable is redacted."""
    text = str(value).strip() if value is not None else ""
    plain = _IPV4.fullmatch(text)  # dotted IPv4, the common case: no parser needed
    if plain:
        return plain.group(1) + ".0/24"
    return _generalize(text)


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)"  # 0-255 as ipaddress accepts it (no leading zeros)
_IPV4 = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET})\.{_OCTET}", re.ASCII)


@lru_cache(maxsize=65536)  # log lines repeat addresses; ipaddress parsing dominates otherwise
def _generalize(text: str) -> str:
    if "/" in text:  # already a network (an anonymized value): keep its generalized form
        try:
            net = ipaddress.ip_network(text, strict=False)
            prefix = 24 if net.version == 4 else 48
            return str(net.supernet(new_prefix=prefix)) if net.prefixlen > prefix else str(net)
        except ValueError:
            return REDACTED
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return REDACTED
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def pseudonymize(value: Any, key: bytes) -> str:
    return hmac.digest(key, str(value).encode("utf-8"), "sha256").hex()  # the C fast path of HMAC-SHA256


def mask(value: Any, keep: int) -> str:
    text = str(value)
    cut = max(len(text) - keep, 0)
    return "*" * cut + text[cut:]


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (with Z or offset; naive means UTC) or epoch seconds; None when unparsable."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)  # Python 3.11 reads a trailing Z as UTC
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def truncate_time(value: Any, unit: str) -> Any:
    """Truncate in UTC, keeping the value's format (Z / offset / naive / epoch); unparsable is redacted."""
    if isinstance(value, str) and _ISO_Z.match(value):  # the common shape, by slicing (as strftime would)
        try:
            datetime.fromisoformat(value[:19])  # still a real date and time (no 2026-13-45)
        except ValueError:
            return REDACTED
        return value[:10] + ("T00:00:00Z" if unit == "day" else value[10:13] + ":00:00Z")
    moment = parse_time(value)
    if moment is None:
        return REDACTED
    utc = moment.astimezone(UTC)
    cut = utc.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        cut = cut.replace(hour=0)
    if isinstance(value, (int, float)):
        return int(cut.timestamp()) if isinstance(value, int) else float(cut.timestamp())
    text = value.strip()
    if _ISO_Z.match(text):  # the common shape, by slicing (same result as strftime, much cheaper)
        return text[:10] + ("T00:00:00Z" if unit == "day" else text[10:13] + ":00:00Z")
    if text.endswith("Z"):
        return cut.strftime("%Y-%m-%dT%H:%M:%SZ")
    if "+" in text[10:] or "-" in text[10:]:
        return cut.isoformat()
    sep = "T" if "T" in text else " "
    if len(text) == 10:
        return cut.strftime("%Y-%m-%d")
    return cut.replace(tzinfo=None).isoformat(sep=sep)


def apply_transform(transform: Transform, value: Any, key: bytes | None) -> Any:
    name = transform.name
    if name == "keep":
        return value
    if name == "redact":
        return REDACTED
    if name == "generalize_ip":
        return generalize_ip(value)
    if name == "truncate_time":
        return truncate_time(value, str(transform.arg))
    if name == "mask":
        return mask(value, int(transform.arg or 0))
    if name == "pseudonymize":
        if key is None:
            raise ValueError("pseudonymize needs the key from keys.pseudonymize")
        return pseudonymize(value, key)
    raise ValueError(f"unknown transform {transform}")


def _pseudonymizer(key: bytes, size: int = 65536) -> Callable[[Any], str]:
    """`pseudonymize` with a bounded memo: logs repeat the same ids, and the HMAC dominates otherwise."""
    memo: dict[str, str] = {}

    def pseudonym(value: Any) -> str:
        text = value if isinstance(value, str) else str(value)
        out = memo.get(text)
        if out is None:
            out = pseudonymize(text, key)
            if len(memo) < size:
                memo[text] = out
        return out
    return pseudonym


def _bound(transform: Transform, key: bytes | None) -> Callable[[Any], Any]:
    """`apply_transform` with the transform (and key) fixed."""
    name, arg = transform.name, transform.arg
    if name == "keep":
        return lambda value: value
    if name == "redact":
        return lambda value: REDACTED
    if name == "generalize_ip":
        return generalize_ip
    if name == "truncate_time":
        unit = str(arg)
        return lambda value: truncate_time(value, unit)
    if name == "mask":
        keep = int(arg or 0)
        return lambda value: mask(value, keep)
    if name == "pseudonymize":
        return _pseudonymizer(key) if key is not None else (lambda value: apply_transform(transform, value, None))
    raise ValueError(f"unknown transform {transform}")


class Anonymizer:
    """Turns one record into its anonymized form: listed fields transformed, all others dropped."""

    def __init__(self, category: Category, pseudonym_key: bytes | None):
        self.transforms = {f: t for f, t in (category.anonymize or {}).items() if t.name != "drop"}
        self.named = frozenset(category.anonymize or {})  # transformed, kept or dropped by name
        self.key = pseudonym_key
        self.quasi = list(category.verify.quasi_identifiers) if category.verify else []
        self.k = category.verify.k if category.verify else 1
        self.max_suppression = category.verify.max_suppression if category.verify else 1.0
        # One function per field, chosen once, so a million records pay no dispatch per value.
        self.ops: list[tuple[str, Callable[[Any], Any]]] = [(f, _bound(t, self.key)) for f, t in self.transforms.items()]

    def record(self, record: dict[str, Any]) -> dict[str, Any]:
        return {f: op(record[f]) for f, op in self.ops if f in record}

    def unnamed(self, record: dict[str, Any], into: dict[str, int]) -> None:
        """Count the fields of `record` the category does not name (they are dropped, and reported)."""
        if not record.keys() <= self.named:
            for name in record.keys() - self.named:
                into[name] = into.get(name, 0) + 1

    def classes(self, records: list[dict[str, Any]]) -> list[list[int]]:
        """Indices of anonymized records grouped in equivalence classes on the quasi-identifiers
        (one class of all when the category names none)."""
        if not self.quasi:
            return [list(range(len(records)))] if records else []
        classes: dict[tuple, list[int]] = {}
        for index, record in enumerate(records):
            classes.setdefault(tuple(str(record.get(q)) for q in self.quasi), []).append(index)
        return list(classes.values())

    def suppressed(self, records: list[dict[str, Any]]) -> set[int]:
        """Indices of anonymized records in equivalence classes (on the quasi-identifiers) smaller than k."""
        if not self.quasi:
            return set()
        return {i for members in self.classes(records) if len(members) < self.k for i in members}


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def is_anonymized(anonymizer: Anonymizer, fields: dict, flagged: bool) -> bool:
    """In an object vigil rewrote, a record is anonymized when transforming it again changes nothing."""
    if not flagged:
        return False
    present = {k for k, v in fields.items() if v not in ("", None)}
    if not present <= set(anonymizer.transforms):
        return False
    for name, transform in anonymizer.transforms.items():
        if name not in present:
            continue
        if transform.name == "pseudonymize":
            if not _HEX64.match(str(fields[name])):
                return False
        elif anonymizer.record({name: fields[name]})[name] != fields[name]:
            return False
    return True
