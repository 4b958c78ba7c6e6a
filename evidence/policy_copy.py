"""The copy of the policy in force that a pack carries, with legal-hold subject ids as keyed hashes.

An auditor should read what was enforced, but a hold names people (`holds[].subjects`), and
the pack travels further than the policy file. So the copy is the original text, byte for
byte (comments and layout kept), except that each hold subject's value is replaced by its
keyed hash: HMAC-SHA256 under the evidence key, the same value the ledger and subject plans
carry. Without that key the ids are withheld instead. The policy's SHA-256 in findings.json
and the manifest stays the hash of the original file; the copy says so in its first lines.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from vigil import safe_yaml
from vigil.errors import VigilError
from vigil.policy import PolicyError

from .results import PolicyInForce

COPY_NAME = "policy-in-force.yaml"
WITHHELD = "withheld"


@dataclass(frozen=True)
class PolicyCopy:
    text: str | None  # None: no copy (the policy in force is not at hand)
    note: str  # what the report says about the copy
    hashed: int = 0  # hold subject ids replaced by keyed hashes
    withheld: int = 0  # hold subject ids withheld (no evidence key)


def hold_subject_nodes(root: yaml.Node | None) -> list[yaml.ScalarNode]:
    """The scalar nodes of `holds[i].subjects[j]`, in file order."""
    found: list[yaml.ScalarNode] = []
    if not isinstance(root, yaml.MappingNode):
        return found
    for key, holds in root.value:
        if key.value != "holds" or not isinstance(holds, yaml.SequenceNode):
            continue
        for hold in holds.value:
            if not isinstance(hold, yaml.MappingNode):
                continue
            for field, subjects in hold.value:
                if field.value == "subjects" and isinstance(subjects, yaml.SequenceNode):
                    found += [node for node in subjects.value if isinstance(node, yaml.ScalarNode)]
    return found


def redact(text: str, hash_subject: Callable[[str], str] | None) -> tuple[str, int, int]:
    """`text` with every hold subject replaced by its keyed hash (or withheld); (text, hashed, withheld)."""
    root, _ = safe_yaml.parse(text)
    nodes = hold_subject_nodes(root)
    replacement: dict[str, str] = {}
    if hash_subject is not None:
        try:
            replacement = {node.value: hash_subject(node.value) for node in nodes}
        except (VigilError, PolicyError):
            replacement = {}  # the evidence key cannot be read: withhold rather than publish the ids
    # From the end, so earlier offsets stay valid; an alias shares its anchor's node and is replaced once.
    for node in sorted({id(n): n for n in nodes}.values(), key=lambda n: n.start_mark.index, reverse=True):
        value = replacement.get(node.value, WITHHELD)
        text = text[:node.start_mark.index] + f'"{value}"' + text[node.end_mark.index:]
    hashed = len(nodes) if replacement else 0
    return text, hashed, len(nodes) - hashed


def policy_copy(in_force: PolicyInForce | None, hash_subject: Callable[[str], str] | None) -> PolicyCopy:
    """The copy for the pack, when the policy file at hand is the one in force (same SHA-256)."""
    if in_force is None or in_force.policy is None or not in_force.path:
        return PolicyCopy(None, "The policy file itself is not in this pack (it was not at hand): only its SHA-256 is.")
    raw = Path(in_force.path).read_bytes()
    if hashlib.sha256(raw).hexdigest() != in_force.sha256:
        return PolicyCopy(None, "The policy file changed while the report was written: only its SHA-256 is in this pack.")
    text, hashed, withheld = redact(raw.decode("utf-8"), hash_subject)
    if withheld:
        how = (f"the subject ids of legal holds are withheld ({withheld}): the evidence key was not available "
               "to replace them by their keyed hashes")
    elif hashed:
        how = (f"the subject ids of legal holds ({hashed}) are replaced by their keyed hashes (HMAC-SHA256 under the "
               "evidence key, the values the ledger carries)")
    else:
        how = "the policy names no hold subjects, so the copy is the file as it is"
    note = (f"{COPY_NAME} in this pack is the policy in force; {how}. The policy SHA-256 above (and in findings.json "
            "and the manifest) is that of the original file, so the copy's own digest may differ.")
    header = (f"# Copy of the policy in force, placed in the evidence pack by `vigil report`.\n"
              f"# SHA-256 of the original file: {in_force.sha256}\n# {how[0].upper()}{how[1:]}.\n\n")
    return PolicyCopy(header + text, note, hashed, withheld)
