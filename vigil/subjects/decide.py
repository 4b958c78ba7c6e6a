"""An erasure request as a retention rule: the subject's records are due now, unless held.

`SubjectRules` has the shape of `retention.decide.Rules` (`decide`, `as_of`, `category`), so
the retention engine's own rewrite (planner) and Applier (apply) do the work: other
subjects' records are kept as written, the subject's are removed or anonymized.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from vigil.policy import Policy
from vigil.policy.models import Category
from vigil.retention.decide import EXPIRED, HELD, KEEP, Decision, Rules
from vigil.retention.transforms import Anonymizer

ERASURE = "erasure requested by the subject"


@dataclass(frozen=True)
class SubjectRules:
    subject: str
    base: Rules  # the store's retention rules: legal holds, Object Lock, keep_at_least
    whole: bool = False  # the object is the subject's by its key: every record in it is theirs

    @property
    def as_of(self) -> datetime:
        return self.base.as_of

    @property
    def category(self) -> Category:
        return self.base.category

    def decide(self, created: datetime | None, subject: str | None = None, key: str | None = None,
               lock_mode: str | None = None, lock_until: datetime | None = None, legal_hold: bool = False) -> Decision:
        if not self.whole and subject != self.subject:
            return Decision(KEEP, "another subject's record")
        held = hold(self.base, created, self.subject, key, lock_mode, lock_until, legal_hold)
        if held is not None:
            return Decision(HELD, held[0], held[1], created)
        return Decision(EXPIRED, ERASURE, start=created)


def hold(rules: Rules, created: datetime | None, subject: str | None, key: str | None = None, lock_mode: str | None = None,
         lock_until: datetime | None = None, legal_hold: bool = False) -> tuple[str, date | None] | None:
    """Why this must be kept (and until when), or None. keep_at_least quotes the category's basis;
    without a date to count from, a minimum period is assumed to be running."""
    category = rules.category
    found = rules.held(created, subject, key, lock_mode, lock_until, legal_hold)
    if found is None and category.keep_at_least is not None and created is None:
        found = (f"keep_at_least {category.keep_at_least} (no date to count it from)", None)
    if found is not None and found[0].startswith("keep_at_least") and category.basis:
        return f"{found[0]}: {category.basis}", found[1]
    return found


def store_rules(policy: Policy, store_name: str, category: Category, as_of: datetime) -> Rules:
    return Rules.for_store(policy, store_name, category, as_of, {})


def erase_action(category: Category) -> str:
    """Erasure follows the category: anonymize where the policy says so, delete otherwise
    (a category kept forever is deleted too: the subject's data is personal data)."""
    return "anonymize" if category.action == "anonymize" else "delete"


def subject_anonymizer(category: Category, pseudonym: bytes | None) -> Anonymizer | None:
    """The category's transforms; records that would stay in classes smaller than k are removed
    instead of refusing the batch (for one subject, removing is the safe side)."""
    if category.action != "anonymize":
        return None
    anonymizer = Anonymizer(category, pseudonym)
    anonymizer.max_suppression = 1.0
    return anonymizer
