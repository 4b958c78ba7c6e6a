"""Each anonymization transform against the cli.md table, keys, and k-anonymity suppression."""
from __future__ import annotations

import base64
import hashlib
import hmac
import random

import pytest
from vigil.retention.keys import derive_evidence_key, load_keys, read_key
from vigil.retention.transforms import Anonymizer, apply_transform, generalize_ip, mask, truncate_time

from tests.helpers import policy_variant, repo_policy
from vigil.errors import UsageError
from vigil.policy.models import Category, KeySource, Transform

KEY = b"k" * 32


@pytest.mark.parametrize("value,expected", [
    ("203.0.113.77", "203.0.113.0/24"),
    ("2001:db8:12:34::1", "2001:db8:12::/48"),
    ("203.0.113.0/24", "203.0.113.0/24"),  # already generalized: unchanged (idempotent)
    ("not an ip", "[REDACTED]"),
    ("", "[REDACTED]"),
])
def test_generalize_ip(value: str, expected: str) -> None:
    assert generalize_ip(value) == expected


@pytest.mark.parametrize("value,unit,expected", [
    ("2026-03-04T17:45:12Z", "day", "2026-03-04T00:00:00Z"),
    ("2026-03-04T17:45:12Z", "hour", "2026-03-04T17:00:00Z"),
    ("2026-03-04T01:30:00+02:00", "day", "2026-03-03T00:00:00+00:00"),  # truncated in UTC
    ("2026-03-04 17:45:12", "hour", "2026-03-04 17:00:00"),
    ("garbage", "day", "[REDACTED]"),
])
def test_truncate_time(value: str, unit: str, expected: str) -> None:
    assert truncate_time(value, unit) == expected
    assert truncate_time(truncate_time(value, unit), unit) == truncate_time(value, unit)


def test_mask_keeps_last_n_and_length() -> None:
    assert mask("4111111111111111", 4) == "************1111"
    assert mask("abc", 4) == "abc"
    assert len(mask("4111111111111111", 4)) == 16


def test_pseudonymize_is_lowercase_hex_hmac_sha256_and_stable() -> None:
    out = apply_transform(Transform.parse("pseudonymize"), "acct-42", KEY)
    assert out == hmac.new(KEY, b"acct-42", hashlib.sha256).hexdigest()
    assert len(out) == 64 and out == out.lower()
    assert apply_transform(Transform.parse("pseudonymize"), "acct-42", KEY) == out


def test_redact_keep_drop_and_unlisted_fields_dropped() -> None:
    category = Category.model_validate({"retain": "P90D", "action": "anonymize", "anonymize": {
        "ip": "generalize_ip", "user_agent": "drop", "email": "redact", "path": "keep", "ts": "truncate_time:day"}})
    record = {"ip": "198.51.100.9", "user_agent": "Mozilla", "email": "a@b.example", "path": "/x",
              "ts": "2026-03-04T05:06:07Z", "cookie": "secret"}
    out = Anonymizer(category, KEY).record(record)
    assert out == {"ip": "198.51.100.0/24", "email": "[REDACTED]", "path": "/x", "ts": "2026-03-04T00:00:00Z"}


def test_k_anonymity_suppresses_small_classes() -> None:
    category = Category.model_validate({"retain": "P90D", "action": "anonymize",
                                        "anonymize": {"ip": "generalize_ip", "ts": "truncate_time:day"},
                                        "verify": {"quasi_identifiers": ["ip", "ts"], "k": 3}})
    anonymizer = Anonymizer(category, None)
    rows = [anonymizer.record({"ip": f"10.0.0.{i}", "ts": "2026-01-01T10:00:00Z"}) for i in range(3)]
    rows.append(anonymizer.record({"ip": "10.9.9.9", "ts": "2026-01-01T10:00:00Z"}))
    assert anonymizer.suppressed(rows) == {3}


def test_keys_env_file_and_evidence_derivation(tmp_path, monkeypatch) -> None:
    policy = repo_policy()
    monkeypatch.setenv("VIGIL_PSEUDONYM_KEY", base64.b64encode(KEY).decode())
    keys = load_keys(policy)
    assert keys.pseudonym == KEY
    assert keys.evidence == derive_evidence_key(KEY) != KEY
    assert keys.hash("contacts/alice.json") != "contacts/alice.json" and len(keys.hash("x")) == 64
    raw = bytes(range(200, 232))  # a random-looking raw key is read as is; base64 text is decoded
    path = tmp_path / "k"
    path.write_bytes(raw)
    assert read_key(KeySource(source="file", path=str(path)), policy) == raw
    path.write_text(base64.b64encode(raw).decode() + "\n")
    assert read_key(KeySource(source="file", path=str(path)), policy) == raw
    monkeypatch.delenv("VIGIL_PSEUDONYM_KEY")
    with pytest.raises(UsageError, match="VIGIL_PSEUDONYM_KEY is not set"):
        load_keys(policy)


def test_no_key_at_all_is_bad_input(tmp_path) -> None:
    def no_keys(data):
        data.pop("keys")
        data["categories"]["usage_logs"]["anonymize"]["account_id"] = "redact"
        data["categories"]["call_history"]["anonymize"].update(caller="redact", callee="redact")
    policy = policy_variant(tmp_path, no_keys)
    with pytest.raises(UsageError, match="no evidence key"):
        load_keys(policy)


def test_generalize_ip_fast_path_agrees_with_ipaddress() -> None:
    """Dotted IPv4 takes a regex path; it must give what the ipaddress route gives, including refusals."""
    from vigil.retention.transforms import _generalize, generalize_ip

    samples = ["0.0.0.0", "203.0.113.7", "255.255.255.255", "10.1.2.3", "256.1.1.1", "01.2.3.4", "1.2.3", "1.2.3.4.5",
               "1.2.3.-4", "١.٢.٣.٤"]
    samples += ["2001:db8:12:34::1", "2001:DB8:12::", "::", "::1", "1::", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8",
                "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "2001:db8:0:0:1::1", "0:0:0:0:0:0:0:0",
                "fe80::1%eth0", "::ffff:1.2.3.4", "::ffff:01.2.3.4", "2001:db8::/32", ":", "g::1", "2001:0db8:0012::7"]
    samples += [":".join(f"{n:x}" for n in random.Random(seed).choices([0, 0, 1, 0xdb8, 0xffff], k=8)) for seed in range(200)]
    samples += [" 10.1.2.3", "10.1.2.3 ", "10.1.2.04", "10.1.2.256", "10.1.2.", "10.1.2.٣", "x10.1.2.3"]
    for value in samples + samples:  # the second time through, the /24 memo answers
        assert generalize_ip(value) == _generalize(value.strip()), value


def test_the_bound_pseudonymizer_memo_gives_the_plain_hmac_for_every_value_past_its_size() -> None:
    from vigil.retention.transforms import _pseudonymizer, pseudonymize
    key = b"k" * 32
    bound = _pseudonymizer(key, size=3)
    values = ["a", "b", 7, "a", "c", "d", 7, True, "d", "e"]
    assert [bound(v) for v in values] == [pseudonymize(v, key) for v in values]
    assert bound(7) == bound("7") == pseudonymize("7", key)


def test_the_compiled_record_transform_is_the_plain_field_by_field_one() -> None:
    """Anonymizer.record is generated code (one dict display, memo lookups inline); it must equal
    applying each transform in the category's order, with fields missing, odd values and odd names."""
    category = Category.model_validate({"retain": "P90D", "action": "anonymize", "anonymize": {
        "ip": "generalize_ip", "ua": "drop", "who": "pseudonymize", "mail": "redact", "ts": "truncate_time:hour",
        "card": "mask:4", "path": "keep", "it's \"odd\"\n": "keep"}})
    anonymizer = Anonymizer(category, KEY)
    wanted = {f: t for f, t in (category.anonymize or {}).items() if t.name != "drop"}
    records = [
        {"ip": "10.0.0.1", "ua": "x", "who": "acct-1", "mail": "a@b", "ts": "2026-03-04T05:06:07Z", "card": "4111",
         "path": "/", "it's \"odd\"\n": 1},
        {"who": ["a", "list"], "ts": 1767225600, "path": None, "ip": None, "card": 12345678},
        {"ts": {"not": "a time"}, "who": 7, "extra": "dropped"},
        {"who": "acct-1", "ts": "2026-03-04T05:06:07Z"},
        {},
    ]
    for record in records + records:  # the second time, the memos answer
        expected = {f: apply_transform(t, record[f], KEY) for f, t in wanted.items() if f in record}
        got = anonymizer.record(record)
        assert got == expected and list(got) == list(expected), record
