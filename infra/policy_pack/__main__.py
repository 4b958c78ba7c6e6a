"""`pulumi preview --policy-pack infra/policy_pack`: the catalogue's controls as CrossGuard policies.

The policy file is the repository's policy.yaml, or the one named by VIGIL_POLICY.
"""
import os
from pathlib import Path

from pulumi_policy import PolicyPack
from vigil.infra.policy_pack.pack import policies

from vigil.policy import load_policy

POLICY_FILE = Path(os.environ.get("VIGIL_POLICY") or Path(__file__).resolve().parents[2] / "policy.yaml")

PolicyPack(name="vigil-privacy-controls", policies=policies(load_policy(POLICY_FILE)))
