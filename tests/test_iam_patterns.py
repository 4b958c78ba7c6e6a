"""`match_sets` answers exactly: every combination of elements a string matches is found, and
each example it gives really shows its combination (checked by brute force on small alphabets)."""
from __future__ import annotations

from itertools import product

from hypothesis import given, settings
from hypothesis import strategies as st
from vigil.checks import iam_patterns
from vigil.checks.iam_patterns import Element, match_sets

patterns = st.text(alphabet="ab*?", min_size=0, max_size=5)
elements = st.lists(st.builds(Element, st.lists(patterns, max_size=3).map(tuple), st.booleans()), min_size=1, max_size=4)


def _members(items: list[Element], text: str, ignore_case: bool = False) -> frozenset[int]:
    return frozenset(i for i, e in enumerate(items) if e.matches(text, ignore_case))


@settings(max_examples=300, deadline=None)
@given(items=elements, prefix=st.text(alphabet="ab", max_size=4))
def test_every_combination_found_and_every_example_true(items: list[Element], prefix: str) -> None:
    found = match_sets(items, prefix)
    for combination, example in found.items():
        assert example.startswith(prefix) and len(example) > len(prefix)
        assert _members(items, example) == combination, (example, combination)
    for length in range(1, 6):  # strings up to 5 more characters, over the letters named plus one other
        for tail in product("abc", repeat=length):
            assert _members(items, prefix + "".join(tail)) in found, prefix + "".join(tail)


def test_two_denies_cover_every_action_between_them() -> None:
    found = match_sets([Element(("s3:Get*",), negated=True), Element(("s3:Get*",))], "s3:", ignore_case=True)
    assert frozenset() not in found and set(found) == {frozenset({0}), frozenset({1})}
    gap = match_sets([Element(("s3:Get*",), negated=True), Element(("s3:GetObject",))], "s3:", ignore_case=True)
    assert frozenset() in gap and gap[frozenset()].startswith("s3:get")


def test_ignore_case_folds_patterns_and_prefix() -> None:
    assert frozenset() not in match_sets([Element(("S3:*",))], "s3:", ignore_case=True)
    assert set(match_sets([Element(("S3:*",))], "s3:")) == {frozenset()}


def test_past_the_state_budget_the_answer_is_not_covered(monkeypatch) -> None:
    covering = [Element(("*",)), Element(("*a*b*",)), Element(("*b*a*",))]
    assert frozenset() not in match_sets(covering, "")  # "*" matches every string
    monkeypatch.setattr(iam_patterns, "MAX_STATES", 2)
    iam_patterns._match_sets.cache_clear()  # answers are cached; this one must be computed under the budget
    assert frozenset() in match_sets(covering, "")  # fails safe: a coverage question then fails
