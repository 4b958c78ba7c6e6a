"""Read IAM policy documents the way AWS reads them.

`Statement` may be an object or a list; `Action`/`Resource`/principal values a string or a
list with `*`/`?` wildcards; `NotAction`/`NotResource`/`NotPrincipal` invert; condition
values may be strings or JSON booleans/numbers, and keys are case-insensitive. Everything
here is pure and answers one precise question, so evaluators stay readable.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

S3_OBJECT_READ_WRITE_DELETE = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def statements(document: dict | None) -> list[dict]:
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match: only `*` and `?` are special."""
    return isinstance(pattern, str) and _glob(pattern, ignore_case).fullmatch(value) is not None


def covers_all_with_prefix(pattern: str, prefix: str, ignore_case: bool = False) -> bool:
    """Does `pattern` match every string that starts with `prefix`?

    True exactly when the pattern ends in `*` and the part before that `*` matches some
    leading part of `prefix` (the final `*` then absorbs the rest, whatever it is).
    """
    if not isinstance(pattern, str) or not pattern.endswith("*"):
        return False
    head = pattern[:-1]
    return any(glob_match(head, prefix[:cut], ignore_case) for cut in range(len(prefix) + 1))


def may_overlap_prefix(pattern: str, prefix: str, ignore_case: bool = False) -> bool:
    """Could `pattern` match some string starting with `prefix`? (Conservative: literal heads only.)"""
    if not isinstance(pattern, str):
        return False
    literal = re.split(r"[*?]", pattern, maxsplit=1)[0]
    a, b = (literal.lower(), prefix.lower()) if ignore_case else (literal, prefix)
    return a.startswith(b) or b.startswith(a)


# --- principals ------------------------------------------------------------------------


def principal_is_everyone(statement: dict) -> bool:
    """Principal "*" or {"AWS": "*"} (or a list holding "*"). NotPrincipal never counts as everyone."""
    if "NotPrincipal" in statement:
        return False
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "*" in as_list(principal.get("AWS"))
    return False


def principals(statement: dict) -> list[str]:
    """Every principal a statement names, as "<type>:<value>" strings (for access review)."""
    value = statement.get("Principal", statement.get("NotPrincipal"))
    if value == "*":
        return ["*"]
    out = []
    if isinstance(value, dict):
        for kind, names in value.items():
            out += [f"{kind}:{name}" for name in as_list(names)]
    return out


# --- actions and resources --------------------------------------------------------------


def applies_to_action(statement: dict, action: str) -> bool:
    if "Action" in statement:
        return any(glob_match(p, action, ignore_case=True) for p in as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(glob_match(p, action, ignore_case=True) for p in as_list(statement["NotAction"]))
    return False


def applies_to_all_s3_actions(statement: dict) -> bool:
    if "Action" in statement:
        return any(covers_all_with_prefix(p, "s3:", ignore_case=True) for p in as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(may_overlap_prefix(p, "s3:", ignore_case=True) for p in as_list(statement["NotAction"]))
    return False


def applies_to_resource(statement: dict, arn: str) -> bool:
    if "Resource" in statement:
        return any(glob_match(p, arn) for p in as_list(statement["Resource"]))
    if "NotResource" in statement:
        return not any(glob_match(p, arn) for p in as_list(statement["NotResource"]))
    return False


def applies_to_all_objects(statement: dict, bucket: str) -> bool:
    prefix = f"arn:aws:s3:::{bucket}/"
    if "Resource" in statement:
        return any(covers_all_with_prefix(p, prefix) for p in as_list(statement["Resource"]))
    if "NotResource" in statement:
        return not any(may_overlap_prefix(p, prefix) for p in as_list(statement["NotResource"]))
    return False


# --- conditions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    operator: str  # as written, e.g. "BoolIfExists", "ForAnyValue:StringLike"
    key: str  # lower-cased: condition keys are case-insensitive
    values: tuple[str, ...]  # as strings; booleans as "true"/"false"

    @property
    def base(self) -> str:
        """The operator without set prefix or IfExists: "ForAnyValue:StringLikeIfExists" -> "StringLike"."""
        return self.operator.split(":")[-1].removesuffix("IfExists")

    @property
    def if_exists(self) -> bool:
        return self.operator.endswith("IfExists")

    @property
    def negated(self) -> bool:
        return "Not" in self.base


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def conditions(statement: dict) -> list[Condition]:
    block = statement.get("Condition")
    out: list[Condition] = []
    if not isinstance(block, dict):
        return out
    for operator, entries in block.items():
        if not isinstance(entries, dict):
            continue
        for key, values in entries.items():
            out.append(Condition(str(operator), str(key).lower(), tuple(_text(v) for v in as_list(values))))
    return out


def is_bool(condition: Condition, key: str, value: str, allow_if_exists: bool = True, among: bool = False) -> bool:
    """Is this `Bool`/`BoolIfExists` on `key` testing for `value` ("true"/"false", any case)?

    Several values are OR-ed by AWS: for a Deny, `among=True` accepts a list that contains
    `value` (the deny then matches at least those requests); an Allow needs exactly `value`.
    """
    if condition.base != "Bool" or ":" in condition.operator or condition.key != key.lower():
        return False
    if condition.if_exists and not allow_if_exists:
        return False
    values = [v.lower() for v in condition.values]
    return value in values if among else values == [value]


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
