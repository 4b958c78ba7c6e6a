"""MFA-04: the roles people assume to reach personal data demand MFA in their trust policy.

Every Allow that lets a principal call sts:AssumeRole must carry `Bool
aws:MultiFactorAuthPresent = true` (BoolIfExists would let requests without the key in).
Federated actions (AssumeRoleWithSAML / WithWebIdentity) never carry the key, so MFA
cannot be proven for them and they fail.
"""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks import iam_policy as iam
from vigil.checks.context import Context
from vigil.checks.model import Finding
from vigil.checks.registry import evaluator
from vigil.checks.verdicts import errored, failed, verdict

ID = "MFA-04"
KEY = "aws:MultiFactorAuthPresent"
FEDERATED = ("sts:AssumeRoleWithSAML", "sts:AssumeRoleWithWebIdentity")


def _requires_mfa(statement: dict) -> bool:
    return any(iam.is_bool(c, KEY, "true", allow_if_exists=False) for c in iam.conditions(statement))


def judge(trust_policy: dict) -> tuple[bool, str]:
    allows = [s for s in iam.statements(trust_policy) if s.get("Effect") == "Allow"]
    for statement in allows:
        sid = statement.get("Sid") or f"statement {allows.index(statement) + 1}"
        if iam.applies_to_action(statement, "sts:AssumeRole") and not _requires_mfa(statement):
            return False, f"{sid} lets {', '.join(iam.principals(statement)) or 'a principal'} assume the role without Bool aws:MultiFactorAuthPresent = true"
        if any(iam.applies_to_action(statement, action) for action in FEDERATED):
            return False, f"{sid} allows federated assumption, where MFA cannot be required by the trust policy"
    if not allows:
        return True, "the trust policy allows nobody to assume the role"
    return True, "every principal allowed to assume the role must present MFA"


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    account = ctx.inventory.account_id
    for name in ctx.policy.access.human_roles:
        role = ctx.inventory.roles.get(name)
        arn = role.arn if role else f"arn:aws:iam::{account}:role/{name}"
        if role is None:
            yield failed(ID, arn, "global", f"human role '{name}' was not collected", "iam:GetRole", None)
        elif not role.trust_policy.ok:
            yield errored(ID, arn, "global", role.trust_policy)
        elif role.trust_policy.value is None:
            yield failed(ID, arn, "global", f"role '{name}' listed in access.human_roles does not exist",
                         role.trust_policy.api, None)
        else:
            ok, reason = judge(role.trust_policy.value)
            yield verdict(ID, arn, "global", ok, reason, role.trust_policy.api, role.trust_policy.value)
