"""Load and validate the policy file; every error names the file, the line and the key."""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from vigil import safe_yaml

from .models import Policy
from .rules import Issue, cross_field_errors

KeyPath = tuple[str | int, ...]
# A rule a layer above the core adds (checks: waivers name catalogued controls); yields (key path, message).
Rule = Callable[[Policy], Iterable[Issue]]


@dataclass(frozen=True)
class PolicyIssue:
    line: int
    path: KeyPath
    message: str

    def format(self, file: str) -> str:
        where = dotted(self.path) or "(top level)"
        return f"{file}:{self.line}: {where}: {self.message}"


class PolicyError(Exception):
    """The policy file is unusable; `str()` lists every problem, one per line."""

    def __init__(self, file: str, issues: list[PolicyIssue]):
        self.file = file
        self.issues = sorted(issues, key=lambda i: (i.line, dotted(i.path)))
        super().__init__("\n".join(issue.format(file) for issue in self.issues))


def dotted(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Loader(safe_yaml.Loader):
    """The safe loader (aliases on a budget) that leaves dates as text: the models parse them and report a bad one by key
    (PyYAML would raise a bare ValueError for `2026-13-45`)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Lines:
    """Line numbers of every key in the YAML document (1-based), from the node tree."""

    def __init__(self, root: yaml.Node | None):
        self.lines: dict[KeyPath, int] = {(): 1}
        self.duplicates: list[PolicyIssue] = []
        if root is not None:
            self.lines[()] = root.start_mark.line + 1
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: KeyPath) -> None:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.duplicates.append(PolicyIssue(line, path + (key,), "duplicate key (YAML keeps only the last one)"))
                seen.add(key)
                self.lines[path + (key,)] = line
                self._walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.lines[path + (index,)] = item.start_mark.line + 1
                self._walk(item, path + (index,))

    def line_of(self, path: KeyPath) -> int:
        """The line of the deepest part of `path` that exists in the file."""
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.lines:
                return self.lines[path[:cut]]
        return 1


def _message(error: Mapping[str, Any]) -> str:
    kind, msg, value = error["type"], error["msg"], error.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return f"{value!r} is not allowed: {msg[len('Input should be '):] if msg.startswith('Input should be ') else msg}"
    if kind == "union_tag_invalid":
        return f"unknown store kind {error.get('ctx', {}).get('tag')!r} (expected 's3', 'dynamodb', 'rds' or 'postgres')"
    if kind == "union_tag_not_found":
        return "required key 'kind' is missing (one of 's3', 'dynamodb', 'rds', 'postgres')"
    if msg.startswith("Value error, "):
        return msg[len("Value error, "):]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return f"{msg} (got {value!r})"
    return f"{msg} (got a {type(value).__name__})"


_STORE_TAGS = ("s3", "dynamodb", "rds", "postgres")


def _loc(error: Mapping[str, Any]) -> KeyPath:
    """Pydantic's error location without the union tag it inserts after a store's index."""
    out: list[str | int] = []
    for part in error["loc"]:
        if part in _STORE_TAGS and out and isinstance(out[-1], int):
            continue
        out.append(part)
    return tuple(out)


def load_policy(path: str | Path, rules: Iterable[Rule] = ()) -> Policy:
    """Parse and validate `path` (and check it against `rules`); raise PolicyError naming file:line:key for every problem."""
    path = Path(path)
    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(name, [PolicyIssue(0, (), f"cannot read the policy file: {exc.strerror or exc}")]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(name, [PolicyIssue(1, (), f"not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    try:
        root, data = safe_yaml.parse(text, _Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc)
        kind = "YAML refused" if isinstance(exc, safe_yaml.Refused) else "YAML syntax error"
        raise PolicyError(name, [PolicyIssue(line, (), f"{kind}: {problem}")]) from None
    lines = _Lines(root)
    if data is None:
        raise PolicyError(name, [PolicyIssue(1, (), "the policy file is empty")])
    if not isinstance(data, dict):
        raise PolicyError(name, [PolicyIssue(1, (), f"the policy must be a mapping of keys, not a {type(data).__name__}")])
    issues = list(lines.duplicates)
    for key in ("source_path", "sha256"):
        if key in data:
            issues.append(PolicyIssue(lines.line_of((key,)), (key,), "unknown key"))
    if issues:
        raise PolicyError(name, issues)
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            loc = _loc(error)
            issues.append(PolicyIssue(lines.line_of(loc), loc, _message(error)))
        raise PolicyError(name, issues) from None
    issues = [PolicyIssue(lines.line_of(p), p, m) for p, m in [*cross_field_errors(policy), *(i for rule in rules for i in rule(policy))]]
    if issues:
        raise PolicyError(name, issues)
    return policy.model_copy(update={"source_path": str(path), "sha256": hashlib.sha256(raw).hexdigest()})
