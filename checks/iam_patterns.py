"""The sets of strings IAM wildcard patterns describe, answered exactly.

An `Action`/`NotAction` or `Resource`/`NotResource` element matches a set of strings (`*` is
any run of characters, `?` exactly one). Whether several statements *together* reach every
S3 action, or every object of a bucket, is a question about those sets, not about any one
pattern: `NotAction s3:Get*` in one Deny and `Action s3:Get*` in another cover every action
between them. `match_sets` runs all the patterns' automata side by side over every string
with a given prefix and reports each combination of elements that some string matches.
"""
from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

# Product states explored before giving up; real policies need a few hundred. Past it, the
# answer is "some string matches none", which makes every coverage question fail safe.
MAX_STATES = 50_000
_SPARE_CHARACTERS = "xyzqjkw0123456789_-.~"  # one character no pattern names stands for all of them


@lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def glob_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM wildcard match: only `*` and `?` are special."""
    return isinstance(pattern, str) and _glob(pattern, ignore_case).fullmatch(value) is not None


@dataclass(frozen=True)
class Element:
    """One statement's Action/NotAction (or Resource/NotResource) as the set of strings it matches."""

    patterns: tuple[str, ...]
    negated: bool = False  # NotAction/NotResource: what none of the patterns match

    def matches(self, value: str, ignore_case: bool = False) -> bool:
        return any(glob_match(p, value, ignore_case) for p in self.patterns) != self.negated


def _closure(pattern: str, positions: set[int]) -> frozenset[int]:
    """Positions reachable without reading a character (a `*` may match nothing)."""
    out, todo = set(positions), list(positions)
    while todo:
        i = todo.pop()
        if i < len(pattern) and pattern[i] == "*" and i + 1 not in out:
            out.add(i + 1)
            todo.append(i + 1)
    return frozenset(out)


def _step(pattern: str, positions: frozenset[int], char: str) -> frozenset[int]:
    after = set()
    for i in positions:
        if i < len(pattern):
            if pattern[i] == "*":
                after.add(i)
            elif pattern[i] == "?" or pattern[i] == char:
                after.add(i + 1)
    return _closure(pattern, after)


@lru_cache(maxsize=8192)
def _after(pattern: str, text: str) -> frozenset[int]:
    """The pattern's positions after reading `text`; its literal head is compared at once."""
    head = len(pattern)
    for wildcard in "*?":
        found = pattern.find(wildcard)
        head = found if 0 <= found < head else head
    if len(text) <= head:
        return _closure(pattern, {len(text)}) if pattern.startswith(text) else frozenset()
    if not text.startswith(pattern[:head]):
        return frozenset()
    state = _closure(pattern, {head})
    for char in text[head:]:
        state = _step(pattern, state, char)
    return state


def match_sets(elements: Sequence[Element], prefix: str, ignore_case: bool = False) -> dict[frozenset[int], str]:
    """For every string `prefix` + one or more characters: which elements (by index) match it.

    Returns each combination that occurs, with the shortest string showing it. The empty set
    among the keys means some such string matches no element at all.
    """
    return dict(_match_sets(tuple(elements), prefix, ignore_case))  # every bucket asks the same about "s3:*"


@lru_cache(maxsize=1024)
def _match_sets(elements: tuple[Element, ...], prefix: str, ignore_case: bool) -> tuple[tuple[frozenset[int], str], ...]:
    fold = str.lower if ignore_case else str
    always: set[int] = set()  # elements one of whose patterns matches every continuation of the prefix
    owners: list[int] = []  # the patterns still undecided after the prefix, and their elements
    patterns: list[str] = []
    start: list[frozenset[int]] = []
    for index, element in enumerate(elements):
        for raw in element.patterns:
            pattern = fold(str(raw))
            positions = _after(pattern, fold(prefix))
            if any(pattern[i:] and set(pattern[i:]) == {"*"} for i in positions):  # a `*` left takes any rest
                always.add(index)
            elif positions:  # no position left: it can never match, dropped
                owners.append(index)
                patterns.append(pattern)
                start.append(positions)
    literal = {c for p in patterns for c in p if c not in "*?"}
    spare = next((c for c in _SPARE_CHARACTERS if c not in literal), "\u2603")
    alphabet = sorted(literal | {spare})

    def members(state: tuple[frozenset[int], ...]) -> frozenset[int]:
        accepted = always | {owners[j] for j, at in enumerate(state) if len(patterns[j]) in at}
        return frozenset(i for i, e in enumerate(elements) if (i in accepted) != e.negated)

    found: dict[frozenset[int], str] = {}
    seen: set[tuple[frozenset[int], ...]] = set()
    queue = deque([(tuple(start), prefix)])
    while queue:
        state, text = queue.popleft()
        for char in alphabet:
            after = tuple(_step(p, s, char) for p, s in zip(patterns, state, strict=True))
            if after in seen:
                continue
            seen.add(after)
            if len(seen) > MAX_STATES:
                found.setdefault(frozenset(), text + char)
                return tuple(found.items())
            found.setdefault(members(after), text + char)
            queue.append((after, text + char))
    return tuple(found.items())
