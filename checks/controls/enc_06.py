"""ENC-06: EBS encryption by default is on in every region in scope (resource `region:<name>`)."""
from __future__ import annotations

from collections.abc import Iterator

from vigil.checks.context import Context
from vigil.checks.model import Fact, Finding
from vigil.checks.registry import evaluator
from vigil.checks.verdicts import errored, verdict

ID = "ENC-06"
API = "ec2:GetEbsEncryptionByDefault"


@evaluator(ID)
def evaluate(ctx: Context) -> Iterator[Finding]:
    for region in ctx.inventory.regions:
        fact = ctx.inventory.ebs_encryption_by_default.get(region) or Fact(API, error=f"{API} was not collected for {region}")
        if not fact.ok:
            yield errored(ID, f"region:{region}", region, fact)
            continue
        on = fact.value is True
        reason = ("new EBS volumes are encrypted by default" if on
                  else "EBS encryption by default is off; turn it on (ec2:EnableEbsEncryptionByDefault)")
        yield verdict(ID, f"region:{region}", region, on, reason, API, {"EbsEncryptionByDefault": fact.value})
