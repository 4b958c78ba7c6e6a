"""The anonymization transforms of cli.md, exactly, and a per-category record anonymizer."""
from __future__ import annotations

import hmac
import ipaddress
import re
import socket
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import chain
from typing import Any

from vigil.policy.models import Category, Transform

REDACTED = "[REDACTED]"
_ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def generalize_ip(value: Any, bits: int = 24) -> str:
    """IPv4 -> /24, IPv6 -> /48 network in CIDR form; anything unparsable is redacted. A ladder's
    `generalize_ip:N` (bits) gives IPv4 /N and IPv6 /2N, over an address or a network."""
    if bits != 24:
        return _wider(generalize_ip(value), bits)
    if type(value) is str:  # the common case: a dotted IPv4 whose first three octets were seen before
        head, _, last = value.rpartition(".")
        if last in _OCTETS:
            known = _V4_NETWORKS.get(head)
            if known is not None:
                return known
    text = str(value).strip() if value is not None else ""
    plain = _IPV4.fullmatch(text)  # dotted IPv4: no parser needed
    if plain:
        return _remember(_V4_NETWORKS, plain.group(1), plain.group(1) + ".0/24")
    if _HEXTETS.fullmatch(text):  # IPv6 without dots, zones or prefix: memo by its first 48 bits
        try:
            first = socket.inet_pton(socket.AF_INET6, text)[:6]
        except OSError:
            return _generalize(text)
        known = _V6_NETWORKS.get(first)
        return known if known is not None else _remember(_V6_NETWORKS, first, _generalize(text))
    return _generalize(text)


@lru_cache(maxsize=65536)
def _wider(network: str, bits: int) -> str:
    if network == REDACTED:
        return REDACTED
    net = ipaddress.ip_network(network)
    prefix = bits if net.version == 4 else 2 * bits
    return str(net.supernet(new_prefix=prefix)) if net.prefixlen > prefix else str(net)


def _remember(memo: dict[Any, Any], key: Any, value: Any, size: int | None = None) -> Any:
    """memo[key] = value; a full memo starts over (logs drift: time-ordered, new ids)."""
    if len(memo) >= (size or MEMO):
        memo.clear()
    memo[key] = value
    return value


MEMO = 65536  # values remembered per memo
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)"  # 0-255 as ipaddress accepts it (no leading zeros)
_IPV4 = re.compile(rf"({_OCTET}\.{_OCTET}\.{_OCTET})\.{_OCTET}", re.ASCII)
_OCTETS = frozenset(str(n) for n in range(256))  # the same spellings as _OCTET
_V4_NETWORKS: dict[str, str] = {}  # "203.0.113" -> "203.0.113.0/24", for heads _IPV4 validated
_HEXTETS = re.compile(r"[0-9a-fA-F:]{2,39}", re.ASCII)
_V6_NETWORKS: dict[bytes, str] = {}  # an address's first 6 bytes -> its /48, as ipaddress writes it


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
    """Truncate in UTC, keeping the value's format (Z / offset / naive / epoch); unparsable is redacted.
    Units: hour, day (cli.md), and for a ladder's rungs week (from Monday), month and year."""
    fine = unit in ("hour", "day")
    if fine and isinstance(value, str) and _ISO_Z.match(value):  # the common shape, by slicing (as strftime would)
        try:
            datetime.fromisoformat(value[:19])  # still a real date and time (no 2026-13-45)
        except ValueError:
            return REDACTED
        return value[:10] + ("T00:00:00Z" if unit == "day" else value[10:13] + ":00:00Z")
    moment = parse_time(value)
    if moment is None:
        return REDACTED
    cut = _cut(moment.astimezone(UTC), unit)
    if isinstance(value, (int, float)):
        return int(cut.timestamp()) if isinstance(value, int) else float(cut.timestamp())
    text = value.strip()
    if fine and _ISO_Z.match(text):  # the common shape, by slicing (same result as strftime, much cheaper)
        return text[:10] + ("T00:00:00Z" if unit == "day" else text[10:13] + ":00:00Z")
    if text.endswith("Z"):
        return cut.strftime("%Y-%m-%dT%H:%M:%SZ")
    if "+" in text[10:] or "-" in text[10:]:
        return cut.isoformat()
    sep = "T" if "T" in text else " "
    if len(text) == 10:
        return cut.strftime("%Y-%m-%d")
    return cut.replace(tzinfo=None).isoformat(sep=sep)


def _cut(utc: datetime, unit: str) -> datetime:
    cut = utc.replace(minute=0, second=0, microsecond=0)
    if unit == "hour":
        return cut
    cut = cut.replace(hour=0)
    if unit == "week":
        return cut - timedelta(days=cut.weekday())
    if unit == "month":
        return cut.replace(day=1)
    if unit == "year":
        return cut.replace(month=1, day=1)
    return cut


def apply_transform(transform: Transform, value: Any, key: bytes | None) -> Any:
    name = transform.name
    if name == "keep":
        return value
    if name == "redact":
        return REDACTED
    if name == "generalize_ip":
        return generalize_ip(value, int(transform.arg or 24))
    if name == "truncate_time":
        return truncate_time(value, str(transform.arg))
    if name == "mask":
        return mask(value, int(transform.arg or 0))
    if name == "pseudonymize":
        if key is None:
            raise ValueError("pseudonymize needs the key from keys.pseudonymize")
        return pseudonymize(value, key)
    raise ValueError(f"unknown transform {transform}")


def _memoized(function: Callable[[Any], Any], size: int = MEMO) -> Callable[[Any], Any]:
    """`function` with a memo for string values: logs repeat the same ids and seconds, and
    the HMAC or the date check dominates otherwise."""
    memo: dict[str, Any] = {}

    def call(value: Any) -> Any:
        if type(value) is not str:
            return function(value)
        out = memo.get(value)
        return out if out is not None else _remember(memo, value, function(value), size)
    call.memo = memo  # type: ignore[attr-defined]  # read directly by `_compile`'s code
    return call


def _pseudonymizer(key: bytes, size: int = MEMO) -> Callable[[Any], str]:
    return _memoized(lambda value: pseudonymize(value, key), size)


def _keep(value: Any) -> Any:
    return value


def _redact(value: Any) -> str:
    return REDACTED


def _bound(transform: Transform, key: bytes | None) -> Callable[[Any], Any]:
    """`apply_transform` with the transform (and key) fixed."""
    name, arg = transform.name, transform.arg
    if name == "keep":
        return _keep
    if name == "redact":
        return _redact
    if name == "generalize_ip":
        bits = int(arg or 24)
        return generalize_ip if bits == 24 else (lambda value: generalize_ip(value, bits))
    if name == "truncate_time":
        unit = str(arg)
        return _memoized(lambda value: truncate_time(value, unit))
    if name == "mask":
        keep = int(arg or 0)
        return lambda value: mask(value, keep)
    if name == "pseudonymize":
        return _pseudonymizer(key) if key is not None else (
            lambda value: apply_transform(transform, value, None))
    raise ValueError(f"unknown transform {transform}")


_MISSING = object()


def _compile(ops: list[tuple[str, Callable[[Any], Any]]]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """One function for a category's record transform, written out field by field (as dataclasses
    writes __init__): no loop, no call for a kept field or a redacted one, in the category's order
    (the order retention has always written). Field names enter as repr() literals."""
    scope: dict[str, Any] = {"_M": _MISSING, "_R": REDACTED}
    fast, slow = [], []  # per field: its value in the one-display path, and in the field-by-field one
    for i, (name, op) in enumerate(ops):
        scope[f"op{i}"] = op
        call = "{v}" if op is _keep else "_R" if op is _redact else f"op{i}({{v}})"
        memo = getattr(op, "memo", None)
        if memo is not None:  # a memo hit costs a dict lookup, not a call (its values are never empty)
            scope[f"m{i}"] = memo
        fast.append(f"{name!r}: " + (f"(m{i}.get({{v}}) or {call})" if memo is not None else call).format(v=f"r[{name!r}]"))
        slow += [f"    v = r.get({name!r}, _M)", "    if v is not _M:", f"        out[{name!r}] = {call.format(v='v')}"]
    # A record that has every named field (the common case) is one dict display; others field by field
    # (TypeError: an unhashable value, a list, asked of a memo).
    lines = ["def record(r):", "    try:", "        return {" + ", ".join(fast) + "}",
             "    except (KeyError, TypeError):", "        pass", "    out = {}", *slow]
    lines.append("    return out")
    exec("\n".join(lines), scope)  # noqa: S102 - generated from the policy's field names, each a repr() literal
    return scope["record"]


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
        # quasi-identifier -> its ladder's rungs (label, function over the transformed value), finest first
        self.ladder: dict[str, list[tuple[str, Callable[[Any], Any]]]] = {
            q: [(str(rung), _bound(rung, self.key)) for rung in rungs]
            for q, rungs in (category.verify.ladder.items() if category.verify else ())}
        # record(fields) -> the anonymized record: one function written for the category (`_compile`).
        self.record: Callable[[dict[str, Any]], dict[str, Any]] = _compile(self.ops)

    def rung_ops(self, rung: dict[str, str]) -> dict[str, Callable[[Any], Any]]:
        """The functions of a ladder rung ({quasi-identifier: rung label}, as a plan records it)."""
        return {q: dict(self.ladder[q])[label] for q, label in rung.items()}

    def unnamed(self, record: dict[str, Any], into: dict[str, int]) -> None:
        """Count the fields of `record` the category does not name (they are dropped, and reported)."""
        if not record.keys() <= self.named:
            for name in record.keys() - self.named:
                into[name] = into.get(name, 0) + 1

    def unnamed_all(self, records: list[dict[str, Any]], into: dict[str, int]) -> None:
        """`unnamed` for a batch, counted in one pass in C."""
        for name, n in Counter(chain.from_iterable(records)).items():
            if name not in self.named:
                into[name] = into.get(name, 0) + n

    def class_keys(self, records: list[dict[str, Any]]) -> list[tuple[str, ...]]:
        """Each anonymized record's equivalence class: its quasi-identifiers as text."""
        columns = [[str(record.get(q)) for record in records] for q in self.quasi]
        return list(zip(*columns, strict=True))

    def classes(self, records: list[dict[str, Any]]) -> list[list[int]]:
        """Indices of anonymized records grouped in equivalence classes on the quasi-identifiers
        (one class of all when the category names none)."""
        if not self.quasi:
            return [list(range(len(records)))] if records else []
        classes: dict[tuple, list[int]] = {}
        for index, key in enumerate(self.class_keys(records)):
            classes.setdefault(key, []).append(index)
        return list(classes.values())

    def suppressed(self, records: list[dict[str, Any]]) -> set[int]:
        """Indices of anonymized records in equivalence classes (on the quasi-identifiers) smaller than k."""
        if not self.quasi:
            return set()
        keys = self.class_keys(records)
        sizes = Counter(keys)
        k = self.k
        if all(n >= k for n in sizes.values()):
            return set()
        return {i for i, key in enumerate(keys) if sizes[key] < k}


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
