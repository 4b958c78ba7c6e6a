"""The retention rules of the policy model: what S3 lifecycle expires, what must be kept, limits in days."""
from __future__ import annotations

from tests.helpers import repo_policy


def test_retention_rules_of_the_repository_policy() -> None:
    policy = repo_policy()
    store = {s.name: s for s in policy.stores}
    # billing: whole objects, delete, clock at creation -> S3 lifecycle expires them after 7 * 365 days
    assert policy.expiry_days(store["billing"]) == 7 * 365
    assert policy.retention_limit_days(store["billing"]) == 7 * 365 + 7  # + grace P7D
    # contacts: clock starts when the account closes -> no age alone says when; lifecycle must not expire
    assert policy.expiry_days(store["contacts"]) is None and policy.retention_limit_days(store["contacts"]) is None
    # web logs: records inside objects, anonymized by the job -> lifecycle must not expire whole objects
    assert policy.expiry_days(store["web-logs"]) is None
    assert policy.retention_limit_days(store["web-logs"]) == 90 + 7
    # consent must survive 4 years; the others name no minimum
    assert policy.keep_at_least_days([store["consent"], store["billing"]]) == 4 * 365
    assert policy.keep_at_least_days([store["billing"]]) == 0
    assert policy.longest_retention_days({"billing", "marketing"}) == 7 * 365
    assert policy.longest_retention_days({"billing", "aggregates"}) is None  # aggregates are kept forever
