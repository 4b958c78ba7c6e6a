"""DynamoDB items of an anonymizing category: read as records, transformed by the category's
anonymizer, written back whole. Pure functions; the planner and apply do the I/O.

An item's attributes are its fields: those the category names are transformed, all others are
dropped (as for records in objects). Key attributes cannot be dropped, so the category must
name each of them; a key attribute whose transform changes it moves the item to a new key
(the old item is deleted in the same transaction). Anonymized items carry the `FLAG`
attribute, so later runs keep them.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any

from .transforms import Anonymizer, is_anonymized

FLAG = "vigil-anonymized"  # marks what vigil rewrote: S3 object metadata, DynamoDB item attribute


def plain(value: dict[str, Any] | None) -> Any:
    """A DynamoDB attribute value as a plain str / number (others as their text)."""
    if not value:
        return None
    kind, inner = next(iter(value.items()))
    if kind == "N":
        return float(inner) if "." in inner or "e" in inner.lower() else int(inner)
    if kind == "BOOL":
        return bool(inner)
    if kind == "NULL":
        return None
    return inner if kind == "S" else str(inner)


def typed(value: Any) -> dict[str, Any]:
    """A transformed plain value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": str(value)}
    return {"S": str(value)}


def fields(raw: dict[str, Any]) -> dict[str, Any]:
    """The item as a plain record (what the anonymizer and k-anonymity see), without the flag."""
    return {name: plain(value) for name, value in raw.items() if name != FLAG}


def digest(raw: dict[str, Any]) -> str:
    """Stands for the item's whole content: apply writes only items unchanged since the plan."""
    text = json.dumps(raw, sort_keys=True, default=lambda v: bytes(v).hex())
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def key_problem(anonymizer: Anonymizer, key_names: list[str], key_types: dict[str, str] | None = None) -> tuple[str | None, bool]:
    """(why items of this table cannot be anonymized, or None; whether anonymizing changes keys)."""
    missing = [name for name in key_names if name not in anonymizer.transforms]
    if missing:
        names = ", ".join(repr(m) for m in missing)
        return (f"the key attribute {names} is not named in the category's anonymize map (or is dropped), and an "
                f"item cannot lose its key: name it with keep or pseudonymize"), False
    for name, kind in (key_types or {}).items():
        transform = anonymizer.transforms.get(name)
        if transform is not None and transform.name != "keep" and (kind == "B" or (kind == "N" and transform.name != "truncate_time")):
            return (f"the key attribute {name!r} is of type {kind}, and {transform} would write it as text: "
                    f"keep it, or key the table by a string"), False
    return None, any(anonymizer.transforms[name].name != "keep" for name in key_names)


def is_anonymized_item(anonymizer: Anonymizer, raw: dict[str, Any]) -> bool:
    return FLAG in raw and is_anonymized(anonymizer, fields(raw), True)


def anonymized_item(anonymizer: Anonymizer, raw: dict[str, Any], rung: dict[str, str] | None = None) -> dict[str, Any]:
    """The item to write: named attributes transformed (kept ones exactly as they were), the rest
    dropped; `rung` (the batch's ladder rung, from the plan) generalizes its quasi-identifiers further."""
    climbed = anonymizer.rung_ops(rung or {})
    out: dict[str, Any] = {}
    for name, op in anonymizer.ops:
        if name not in raw:
            continue
        if name in climbed:
            value = op(plain(raw[name]))
            out[name] = typed(value if value is None else climbed[name](value))
        else:
            out[name] = raw[name] if anonymizer.transforms[name].name == "keep" else typed(op(plain(raw[name])))
    out[FLAG] = {"S": "1"}
    return out


def writes(table: str, key: dict[str, Any], raw: dict[str, Any], new: dict[str, Any] | None,
           timestamp_attribute: str | None) -> list[dict[str, Any]]:
    """TransactWriteItems entries for one item: delete it (suppressed), or replace it with `new`.

    Each write is guarded: the item still exists, is not yet anonymized and (when the store
    ages items by an attribute) still has the timestamp the plan read; a new key must be free.
    """
    names = {"#k": next(iter(key)), "#f": FLAG}
    values: dict[str, Any] = {}
    guard = "attribute_exists(#k) AND attribute_not_exists(#f)"
    if timestamp_attribute and timestamp_attribute in raw:
        names["#t"], values[":t"] = timestamp_attribute, raw[timestamp_attribute]
        guard += " AND #t = :t"
    condition: dict[str, Any] = {"ConditionExpression": guard, "ExpressionAttributeNames": names}
    if values:
        condition["ExpressionAttributeValues"] = values
    if new is None:
        return [{"Delete": {"TableName": table, "Key": key, **condition}}]
    if all(new.get(name) == value for name, value in key.items()):
        return [{"Put": {"TableName": table, "Item": new, **condition}}]
    free = {"ConditionExpression": "attribute_not_exists(#k)", "ExpressionAttributeNames": {"#k": names["#k"]}}
    return [{"Delete": {"TableName": table, "Key": key, **condition}}, {"Put": {"TableName": table, "Item": new, **free}}]
