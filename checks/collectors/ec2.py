"""EC2: whether new EBS volumes are encrypted by default, per region."""
from __future__ import annotations

from vigil.checks.collectors.base import CollectSession, fetch
from vigil.checks.model import Fact, Inventory


def _region(session: CollectSession, region: str) -> Fact[bool]:
    client = session.aws.client("ec2", region)
    return fetch("ec2:GetEbsEncryptionByDefault", lambda: bool(client.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]))


def collect(session: CollectSession, inventory: Inventory) -> None:
    futures = {region: session.submit(_region, session, region) for region in session.regions}
    for region, future in futures.items():
        inventory.ebs_encryption_by_default[region] = future.result()
