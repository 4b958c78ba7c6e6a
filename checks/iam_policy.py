"""Read IAM policy documents the way AWS reads them.

`Statement` may be an object or a list; `Action`/`Resource`/principal values a string or a
list with `*`/`?` wildcards; `NotAction`/`NotResource`/`NotPrincipal` invert; condition
values may be strings or JSON booleans/numbers, and keys are case-insensitive. Everything
here is pure and answers one precise question, so evaluators stay readable.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vigil.checks.iam_patterns import Element, match_sets
from vigil.checks.iam_patterns import glob_match as glob_match  # re-exported: callers match single patterns

S3_OBJECT_READ_WRITE_DELETE = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")


def as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def statements(document: dict | None) -> list[dict]:
    if not isinstance(document, dict):
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, dict)]


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


def element(statement: dict, name: str) -> Element:
    """The statement's `name` ("Action" or "Resource") or its Not- form; neither matches nothing."""
    if name in statement:
        return Element(tuple(str(p) for p in as_list(statement[name])))
    if f"Not{name}" in statement:
        return Element(tuple(str(p) for p in as_list(statement[f"Not{name}"])), negated=True)
    return Element(())


def applies_to_action(statement: dict, action: str) -> bool:
    return element(statement, "Action").matches(action, ignore_case=True)  # action names ignore case


def applies_to_resource(statement: dict, arn: str) -> bool:
    return element(statement, "Resource").matches(arn)


def uncovered(statements: Sequence[dict], actions: Sequence[str], resources: Sequence[str]) -> list[tuple[str, str]]:
    """(action, resource) pairs that none of `statements` applies to; empty when together they cover all.

    Each target is an exact name, or a name ending in `*` for every name that starts with the
    rest ("s3:*": every S3 action; "arn:aws:s3:::b/*": every object of b). Statements combine
    for actions and resources alike: one may cover the bucket, another its objects; one
    `NotAction s3:Get*`, another `Action s3:Get*`. Each gap comes with the shortest example.
    """
    resource_elements = [element(s, "Resource") for s in statements]
    action_elements = [element(s, "Action") for s in statements]
    gaps: list[tuple[str, str]] = []
    for resource_target in resources:
        for applying, resource in _cases(resource_elements, resource_target, ignore_case=False).items():
            chosen = [action_elements[i] for i in sorted(applying)]
            for action_target in actions:
                gaps += [(action, resource) for hit, action in _cases(chosen, action_target, ignore_case=True).items() if not hit]
    return gaps


def _cases(elements: Sequence[Element], target: str, ignore_case: bool) -> dict[frozenset[int], str]:
    if target.endswith("*"):
        return match_sets(elements, target[:-1], ignore_case)
    return {frozenset(i for i, e in enumerate(elements) if e.matches(target, ignore_case)): target}


def describe_gap(gaps: Sequence[tuple[str, str]], bucket_arn: str) -> str:
    """Where a deny meant for `s3:*` on the bucket and its objects falls short, in words."""
    on_bucket = any(resource == bucket_arn for _, resource in gaps)
    on_objects = any(resource != bucket_arn for _, resource in gaps)
    where = "the bucket or its objects" if on_bucket and on_objects else "its objects (bucket/*)" if on_objects else "the bucket itself"
    action, resource = gaps[0]
    return (f"it does not cover every S3 action on {where} (e.g. {action} on {resource}); "
            f"deny s3:* on both {bucket_arn} and {bucket_arn}/*")


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

    @property
    def set_operator(self) -> str:
        """"ForAnyValue", "ForAllValues", or "" for a plain operator."""
        return self.operator.split(":")[0] if ":" in self.operator else ""


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


def always_true(condition: Condition) -> bool:
    """Does every request pass this test, so that it narrows nothing?

    `Null` on both "true" and "false" (a key is absent or present); `StringLike "*"` when an
    absent key passes too: with IfExists, or ForAllValues (true for an absent key, and every
    value matches `*`). Plain `StringLike "*"` is false for a request without the key.
    """
    values = {v.lower() for v in condition.values}
    if condition.base == "Null" and not condition.set_operator:
        return {"true", "false"} <= values
    if condition.base == "StringLike" and "*" in values:
        return condition.if_exists or condition.set_operator == "ForAllValues"
    return False


def number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
