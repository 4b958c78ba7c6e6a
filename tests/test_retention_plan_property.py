"""Property: for random inventories and as-of dates, the plan never touches held data or data
still within retention (checked against an oracle written from the policy text, not the planner)."""
from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vigil.retention.anonymize import rewrite
from vigil.retention.decide import Rules
from vigil.retention.inventory import Item, Location, ObjectEntry, TableInfo, Version
from vigil.retention.keys import RetentionKeys
from vigil.retention.plan import Planner, Summary
from vigil.retention.plan_items import ItemPlanner, key_text
from vigil.retention.records import parse
from vigil.retention.transforms import Anonymizer

from tests.conftest import ROOT
from vigil.policy import Duration, load_policy

BASE = datetime(2026, 1, 1, tzinfo=UTC)
HOLD_UNTIL = datetime(2030, 6, 1, tzinfo=UTC)


def _policy():
    data = yaml.safe_load((ROOT / "policy.yaml").read_text())
    data["holds"] = [{"reason": "case A", "subjects": ["s1"], "until": HOLD_UNTIL.date().isoformat()},
                     {"reason": "case B", "prefixes": ["contacts/s2", "web/held", "hold/"]}]
    data["categories"]["sessions"] = {"retain": "P90D", "action": "anonymize", "basis": "trends",
                                      "anonymize": {"id": "keep", "ip": "generalize_ip", "ts": "truncate_time:day"}}
    data["stores"].append({"name": "sessions", "kind": "dynamodb", "table": "sessions", "category": "sessions",
                           "timestamp_attribute": "ts", "subject_attribute": "who"})
    path = Path(tempfile.mkdtemp()) / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_policy(path)


POLICY = _policy()
KEYS = RetentionKeys(evidence=b"e" * 32, pseudonym=b"p" * 32)
moments = st.integers(min_value=-4000, max_value=4000).map(lambda d: BASE + timedelta(days=d, seconds=d * 37 % 86400))
subjects = st.sampled_from(["s1", "s2", "s3", "s4"])


def oracle_may_touch(created, start, retain: Duration, as_of, subject, key, lock_until, legal, keep_at_least) -> bool:
    if start is None or retain.after(start) > as_of:
        return False
    for hold_subjects, prefixes, until in ((["s1"], [], HOLD_UNTIL.date()), ([], ["contacts/s2", "web/held", "hold/"], None)):
        if (until is None or until >= as_of.date()) and (subject in hold_subjects or any(key.startswith(p) for p in prefixes)):
            return False
    if legal or (lock_until is not None and lock_until > as_of):
        return False
    return keep_at_least is None or keep_at_least.after(created) <= as_of


versions = st.lists(st.tuples(moments, st.booleans(), st.one_of(st.none(), moments)), min_size=1, max_size=4)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(objects=st.lists(st.tuples(subjects, st.sampled_from(["contacts/", "hold/"]), versions), min_size=1, max_size=8),
       closed=st.dictionaries(subjects, moments), as_of=moments, store_name=st.sampled_from(["consent", "contacts", "billing"]))
def test_plan_never_touches_held_or_live_objects(objects, closed, as_of, store_name) -> None:
    store = next(s for s in POLICY.stores if s.name == store_name)
    category = POLICY.category_of(store)
    planner = Planner(Rules.for_store(POLICY, store.name, category, as_of, closed), store, KEYS,
                      Summary(store.name, "s3", store.category, "delete", "arn", "us-east-1"), None)
    loc = Location(store.name, store.bucket, "us-east-1")
    facts, actions = {}, []
    for n, (subject, prefix, raw_versions) in enumerate(objects):
        key = f"contacts/{subject}.json" if store_name == "contacts" else f"{prefix}{subject}-{n}.json"
        entry = ObjectEntry(key, [])
        for i, (created, legal, lock_until) in enumerate(raw_versions):
            version = Version(key, f"v{n}-{i}", i == 0, False, created, 10, "COMPLIANCE" if lock_until else None, lock_until, legal)
            entry.versions.append(version)
            start = closed.get(subject) if category.after else created
            # only a key that fits the store's subject_from_key tells whose object it is
            mapped = store.subject_from_key and key == store.subject_from_key.replace("{subject}", subject)
            known = subject if mapped else None
            facts[(key, version.version_id)] = oracle_may_touch(created, start, category.retain, as_of, known, key,
                                                                lock_until, legal, category.keep_at_least)
        actions += planner.object(loc, entry)
    actions += planner.flush()
    touched = [(key, vid) for a in actions for key, vid in a.get("objects", [])]
    assert len(touched) == len(set(touched))
    for target in touched:
        assert facts[target], f"planned to delete {target}, which is held or within retention"
    assert len(touched) == sum(facts.values()), "everything deletable is planned"


records = st.lists(st.tuples(moments, st.sampled_from(["web/held/x.jsonl", "web/a.jsonl"]), st.integers(0, 2)), min_size=1, max_size=30)


@settings(max_examples=100, deadline=None)
@given(rows=records, as_of=moments)
def test_records_outside_retention_only_are_transformed(rows, as_of) -> None:
    store = next(s for s in POLICY.stores if s.name == "web-logs")
    category = POLICY.category_of(store)
    key = rows[0][1]
    lines = [{"ip": f"203.0.113.{ip}", "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "path": "/", "status": 200, "user_agent": "x"}
             for ts, _, ip in rows]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    version = Version(key, "v1", True, False, BASE)
    version.parsed = parse(body, key, "jsonl", store.timestamp_field, store.subject_field)
    result = rewrite(Rules.for_store(POLICY, store.name, category, as_of, {}), store, version,
                     Anonymizer(category, KEYS.pseudonym), False, remove=False)
    touchable = [oracle_may_touch(ts, ts, category.retain, as_of, None, key, None, False, None) for ts, _, _ in rows]
    if result.refused is None and result.changed:
        kept_raw = [line for line in result.lines if b'"user_agent"' in line]
        assert len(kept_raw) == touchable.count(False), "every record in retention or on hold is kept as written"
    else:
        assert result.lines == [] or not any(touchable) or result.refused is not None
    assert result.expired <= sum(touchable)


@settings(max_examples=30, deadline=None)
@given(per_key=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=6))
def test_delete_batches_hold_at_most_1000_and_lose_nothing(per_key) -> None:
    store = next(s for s in POLICY.stores if s.name == "billing")
    as_of = BASE + timedelta(days=9 * 366)
    planner = Planner(Rules.for_store(POLICY, store.name, POLICY.category_of(store), as_of, {}), store, KEYS,
                      Summary(store.name, "s3", store.category, "delete", "arn", "us-east-1"), None)
    loc = Location(store.name, store.bucket, "us-east-1")
    actions = []
    for n, count in enumerate(per_key):
        versions = [Version(f"k{n}", f"v{n}-{i}", i == 0, False, BASE) for i in range(count)]
        actions += planner.object(loc, ObjectEntry(f"k{n}", versions))
    actions += planner.flush()
    sizes = [len(a["objects"]) for a in actions]
    assert all(size <= 1000 for size in sizes)
    assert sum(sizes) == sum(per_key) == planner.summary.counts["delete"]
    assert len({a["action_id"] for a in actions}) == len(actions)


@settings(max_examples=100, deadline=None)
@given(rows=st.lists(st.tuples(moments, subjects), min_size=1, max_size=250), closed=st.dictionaries(subjects, moments),
       as_of=moments, store_name=st.sampled_from(["sessions", "referrals", "subscribers"]))
def test_item_plan_never_touches_held_or_live_items(rows, closed, as_of, store_name) -> None:
    store = next(s for s in POLICY.stores if s.name == store_name)
    category = POLICY.category_of(store)
    anonymizer = Anonymizer(category, KEYS.pseudonym) if category.action == "anonymize" else None
    summary = Summary(store.name, "dynamodb", store.category, str(category.action), "arn", "us-east-1")
    planner = ItemPlanner(Rules.for_store(POLICY, store.name, category, as_of, closed), store, KEYS, summary, anonymizer,
                          TableInfo(store.name, store.table, "us-east-1", key_names=["id"]))
    facts, actions = {}, []
    for n, (ts, subject) in enumerate(rows):
        raw = {"id": {"S": f"i{n}"}, "ip": {"S": "203.0.113.9"}, "ts": {"S": ts.strftime("%Y-%m-%dT%H:%M:%SZ")},
               "who": {"S": subject}}
        start = closed.get(subject) if category.after else ts
        facts[key_text({"id": raw["id"]})] = oracle_may_touch(ts, start, category.retain, as_of, subject, "", None, False,
                                                              category.keep_at_least)
        actions += planner.item(Item({"id": raw["id"]}, ts, subject, 10, raw=raw if anonymizer else None))
    actions += planner.flush()
    touched = [key for a in actions for key in a["items"]]
    assert len(touched) == len(set(touched))
    assert all(facts[key] for key in touched), "planned to change an item held or within retention"
    assert len(touched) == sum(facts.values()), "everything past retention is planned"
    assert all(len(a["items"]) <= (100 if anonymizer else 1000) for a in actions)


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=260), min_size=1, max_size=40), k=st.integers(2, 25),
       cap=st.sampled_from([50, 100]))
def test_item_actions_hold_whole_classes_or_pieces_of_at_least_k(sizes, k, cap) -> None:
    from vigil.retention.plan_items import pack, pieces
    classes, start = [], 0
    for size in sizes:
        classes.append(list(range(start, start + size)))
        start += size
    kept = [c for c in classes if len(c) >= k]
    loose = [i for c in classes if len(c) < k for i in c]
    actions = pack(pieces(kept, cap, k), loose, cap)
    flat = [i for a in actions for i in a]
    assert sorted(flat) == list(range(start)), "every item in exactly one action"
    assert all(len(a) <= cap for a in actions)
    class_of = {i: n for n, c in enumerate(classes) for i in c}
    for action in actions:
        for n in {class_of[i] for i in action if i not in loose}:
            assert sum(1 for i in action if class_of[i] == n) >= k, "a class below k inside one action"


def test_large_items_go_fewer_to_a_transaction_so_none_passes_its_4_mb() -> None:
    from vigil.retention.plan_items import TRANSACTION_BYTES
    store = next(s for s in POLICY.stores if s.name == "sessions")
    category = POLICY.category_of(store)
    summary = Summary(store.name, "dynamodb", store.category, "anonymize", "arn", "us-east-1")
    as_of = BASE + timedelta(days=365)
    planner = ItemPlanner(Rules.for_store(POLICY, store.name, category, as_of, {}), store, KEYS, summary,
                          Anonymizer(category, KEYS.pseudonym), TableInfo(store.name, store.table, "us-east-1", key_names=["id"]))
    actions = []
    for n in range(60):
        raw = {"id": {"S": f"i{n}"}, "ip": {"S": "203.0.113.9"}, "ts": {"S": "2026-01-01T00:00:00Z"}, "blob": {"S": "x" * 300_000}}
        actions += planner.item(Item({"id": raw["id"]}, BASE, None, len(repr(raw)), raw=raw))
    actions += planner.flush()
    assert sum(a["count"] for a in actions) == 60 and len(actions) > 1
    assert all(a["bytes"] <= TRANSACTION_BYTES for a in actions)
