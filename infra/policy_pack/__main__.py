"""`pulumi preview --policy-pack infra/policy_pack`: the catalogue's controls as CrossGuard policies.

The policy file is policy.yaml at the project root (the folder holding Pulumi.yaml), or the
one VIGIL_POLICY names (a relative name is relative to the project root, like vigil:policyFile).
"""
import os
from pathlib import Path

from pulumi_policy import PolicyPack
from vigil.infra.policy_pack.pack import policies
from vigil.infra.settings import project_root

from vigil.policy import load_policy

POLICY_FILE = project_root(Path(__file__).resolve().parent) / Path(os.environ.get("VIGIL_POLICY") or "policy.yaml").expanduser()

PolicyPack(name="vigil-privacy-controls", policies=policies(load_policy(POLICY_FILE)))
