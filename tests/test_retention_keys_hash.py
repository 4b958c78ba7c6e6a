"""RetentionKeys.hash is HMAC-SHA256 exactly (computed from precomputed pads for speed), and keys still pickle."""
from __future__ import annotations

import hashlib
import hmac
import pickle

from hypothesis import given, settings
from hypothesis import strategies as st
from vigil.retention.keys import RetentionKeys


@settings(max_examples=300, deadline=None)
@given(key=st.binary(min_size=0, max_size=200), value=st.text(max_size=300))
def test_keyed_hash_is_hmac_sha256(key: bytes, value: str) -> None:
    keys = RetentionKeys(key)
    expected = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()
    assert keys.hash(value) == expected
    assert keys.hash(value) == expected, "the pads are reused unchanged"


def test_keys_pickle_after_hashing() -> None:
    keys = RetentionKeys(b"e" * 32, b"p" * 32)
    first = keys.hash("invoices/s1/a.json")
    again = pickle.loads(pickle.dumps(keys))
    assert again == keys and again.hash("invoices/s1/a.json") == first
    assert keys.fingerprint == again.fingerprint
