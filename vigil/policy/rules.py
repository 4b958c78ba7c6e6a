"""Rules that span several parts of the policy file. Each yields (key path, message)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime

from .models import TIME_UNITS, Category, DynamoDBStore, Policy, PostgresStore, RDSStore, S3Store, Transform

Issue = tuple[tuple[str | int, ...], str]


def cross_field_errors(policy: Policy) -> list[Issue]:
    return [*_regions(policy), *_categories(policy), *_stores(policy), *_holds(policy), *_waivers(policy), *_requests(policy)]


def _regions(policy: Policy) -> Iterator[Issue]:
    regions = policy.regions
    if regions.backup == regions.primary:
        yield ("regions", "backup"), f"'{regions.backup}' is the primary region; off-site copies need a different region"
    for key in ("primary", "backup"):
        value = getattr(regions, key)
        if value not in regions.allowed:
            yield ("regions", key), f"'{value}' is not in regions.allowed {regions.allowed}"


def _ladder(category: Category, path: tuple[str, ...]) -> Iterator[Issue]:
    """Each rung generalizes the field's own transform, coarser than the rung before it."""
    assert category.verify is not None
    for field, rungs in category.verify.ladder.items():
        if field not in category.verify.quasi_identifiers:
            yield path + (field,), f"'{field}' is not one of verify.quasi_identifiers"
            continue
        if not rungs:
            yield path + (field,), "a ladder needs at least one rung"
            continue
        base = (category.anonymize or {})[field]
        previous = base
        for index, rung in enumerate(rungs):
            if rung.name != "redact" and rung.name != base.name:
                yield path + (field, index), f"'{rung}' does not generalize '{field}: {base}' (use {base.name}:... or redact)"
            elif not coarser(rung, previous):
                yield path + (field, index), f"'{rung}' is not coarser than '{previous}' before it"
            previous = rung


def coarser(rung: Transform, than: Transform) -> bool:
    if than.name == "redact":
        return False
    if rung.name == "redact":
        return True
    if rung.name == "truncate_time":
        return TIME_UNITS.index(str(rung.arg)) > TIME_UNITS.index(str(than.arg))
    return int(rung.arg or 24) < int(than.arg or 24)  # generalize_ip: a shorter prefix


def _categories(policy: Policy) -> Iterator[Issue]:
    for name, category in policy.categories.items():
        path = ("categories", name)
        if category.retain.forever:
            if category.action is not None or category.anonymize is not None:
                yield path + ("action",), "a category kept forever has no action"
            continue
        if category.retain.approx_days() == 0:
            yield path + ("retain",), f"'{category.retain}' is zero; retention must be positive"
        if category.action is None:
            yield path + ("action",), "required key is missing ('delete' or 'anonymize')"
        if category.anonymize is not None and category.action != "anonymize":
            yield path + ("anonymize",), "transforms are only allowed with 'action: anonymize'"
        if category.action == "anonymize" and not category.anonymize:
            yield path + ("anonymize",), "'action: anonymize' needs an 'anonymize' map of field: transform"
        if category.verify is not None:
            if category.action != "anonymize":
                yield path + ("verify",), "'verify' is only allowed with 'action: anonymize'"
            fields = set(category.anonymize or {})
            for index, field in enumerate(category.verify.quasi_identifiers):
                if field not in fields:
                    yield path + ("verify", "quasi_identifiers", index), f"'{field}' is not a field of this category's 'anonymize' map"
                elif category.anonymize and category.anonymize[field].name == "drop":
                    yield path + ("verify", "quasi_identifiers", index), f"'{field}' is dropped, so it cannot be a quasi-identifier"
            yield from _ladder(category, path + ("verify", "ladder"))
        if category.keep_at_least is not None and category.keep_at_least.sort_key() > category.retain.sort_key():
            yield path + ("keep_at_least",), f"'{category.keep_at_least}' is longer than retain '{category.retain}'"
        if category.after == "account_closed" and policy.subjects is None:
            yield path + ("after",), "'after: account_closed' needs a 'subjects:' section saying where account status lives"
        uses_pseudonym = any(t.name == "pseudonymize" for t in (category.anonymize or {}).values())
        if uses_pseudonym and policy.keys.pseudonymize is None:
            yield path + ("anonymize",), "'pseudonymize' needs 'keys.pseudonymize' (where the HMAC key comes from)"
    for key in ("pseudonymize", "evidence"):
        source = getattr(policy.keys, key)
        if source is None:
            continue
        needed = {"env": "name", "file": "path", "kms": "ciphertext"}[source.source]
        if getattr(source, needed) is None:
            yield ("keys", key, needed), f"required key is missing (source '{source.source}' reads it)"


def _stores(policy: Policy) -> Iterator[Issue]:
    names = Counter(store.name for store in policy.stores)
    for index, store in enumerate(policy.stores):
        path: tuple[str | int, ...] = ("stores", index)
        if names[store.name] > 1:
            yield path + ("name",), f"store name '{store.name}' is used more than once"
        if store.category not in policy.categories:
            yield path + ("category",), f"unknown category '{store.category}' (known: {', '.join(policy.categories)})"
            continue
        category = policy.categories[store.category]
        if category.verify is not None and category.verify.scope == "dataset" and not isinstance(store, S3Store):
            yield path + ("category",), (f"category '{store.category}' judges k over the whole dataset (verify.scope: dataset), "
                                         f"which only S3 stores support; a {store.kind} store is judged per batch (scope: object)")
        if isinstance(store, S3Store):
            yield from _s3_store(path, store, category.after)
        elif isinstance(store, DynamoDBStore):
            if category.after == "account_closed" and store.subject_attribute is None:
                yield path + ("subject_attribute",), "required for a category whose clock starts at account_closed"
            if category.after is None and not category.retain.forever and store.timestamp_attribute is None and not (
                policy.subjects is not None and store.table == policy.subjects.table
            ):
                yield path + ("timestamp_attribute",), "required to age items of this category"
        elif isinstance(store, RDSStore) and (store.instance is None) == (store.cluster is None):
            yield path + ("instance",), "name exactly one of 'instance' or 'cluster'"
        elif isinstance(store, PostgresStore):
            yield from _postgres_store(path, store, category, policy)
    yield from _overlaps(policy)


def _overlaps(policy: Policy) -> Iterator[Issue]:
    """Two stores over the same objects or items are refused: each would apply its own rule to
    the other's data, and the shorter retention would delete what the longer one must keep."""
    for index, store in enumerate(policy.stores):
        for other in policy.stores[:index]:
            if isinstance(store, S3Store) and isinstance(other, S3Store) and store.bucket == other.bucket and (
                    store.prefix.startswith(other.prefix) or other.prefix.startswith(store.prefix)):
                where = f"bucket {store.bucket}, prefixes {other.prefix or '(none)'!r} and {store.prefix or '(none)'!r}"
                yield ("stores", index, "prefix" if store.prefix else "bucket"), (
                    f"overlaps store '{other.name}' ({where}): one object would be under two retention rules; "
                    f"give the stores prefixes that do not overlap")
            elif (isinstance(store, DynamoDBStore) and isinstance(other, DynamoDBStore) and store.table == other.table) or (
                    isinstance(store, PostgresStore) and isinstance(other, PostgresStore) and store.connection == other.connection
                    and store.schema_table == other.schema_table):
                yield ("stores", index, "table"), (f"table {store.table} is also store '{other.name}': one item would be "
                                                   f"under two retention rules; name each table once")


def _s3_store(path: tuple[str | int, ...], store: S3Store, after: str | None) -> Iterator[Issue]:
    if store.layout in ("jsonl", "csv") and store.timestamp_field is None and after is None:
        yield path + ("timestamp_field",), f"required for layout '{store.layout}' (records are aged by it)"
    if store.layout == "object" and store.timestamp_field is not None:
        yield path + ("timestamp_field",), "only for layout 'jsonl' or 'csv'; whole objects are aged by LastModified"
    if after == "account_closed" and store.layout == "object" and store.subject_from_key is None:
        yield path + ("subject_from_key",), "required for a category whose clock starts at account_closed"
    if after == "account_closed" and store.layout != "object" and store.subject_field is None:
        yield path + ("subject_field",), "required for a category whose clock starts at account_closed"
    if store.subject_from_key is not None and not store.subject_from_key.startswith(store.prefix):
        yield path + ("subject_from_key",), f"'{store.subject_from_key}' does not start with the store's prefix '{store.prefix}'"


def _postgres_store(path: tuple[str | int, ...], store: PostgresStore, category, policy: Policy) -> Iterator[Issue]:
    if category.after == "account_closed" and store.subject_column is None:
        yield path + ("subject_column",), "required for a category whose clock starts at account_closed"
    if category.after is None and not category.retain.forever and store.timestamp_column is None:
        yield path + ("timestamp_column",), "required to age rows of this category"
    held = [h for h in policy.holds if h.subjects and (not h.stores or store.name in h.stores)]
    if held and store.subject_column is None and not category.retain.forever:
        yield path + ("subject_column",), "required: a legal hold names subjects, and rows are matched to them by this column"
    for column in store.primary_key:
        transform = (category.anonymize or {}).get(column)
        if transform is not None and transform.name != "keep":
            yield path + ("primary_key",), (f"primary key column '{column}' is transformed by '{transform}' in category "
                                            f"'{store.category}'; key columns are kept (a row keeps its identity)")


def _holds(policy: Policy) -> Iterator[Issue]:
    names = {store.name for store in policy.stores}
    for index, hold in enumerate(policy.holds):
        if not hold.subjects and not hold.prefixes:
            yield ("holds", index), "a hold names 'subjects' and/or 'prefixes'"
        for j, store in enumerate(hold.stores):
            if store not in names:
                yield ("holds", index, "stores", j), f"unknown store '{store}'"


def _requests(policy: Policy) -> Iterator[Issue]:
    requests = policy.requests
    if requests is not None and (requests.deadline.forever or requests.deadline.approx_days() == 0):
        yield ("requests", "deadline"), f"'{requests.deadline}' is not a deadline; use a positive period such as P30D"


def waiver_horizon(today: date) -> date:
    """The latest expiry a waiver may have: one year after today (29 Feb -> 28 Feb)."""
    try:
        return today.replace(year=today.year + 1)
    except ValueError:
        return today.replace(year=today.year + 1, day=28)


def _waivers(policy: Policy, today: date | None = None) -> Iterator[Issue]:
    # Whether a waiver names a known control is checked by the checks layer, which owns the
    # catalogue (vigil.checks.waivers.unknown_controls, passed to load_policy as a rule).
    today = today or datetime.now(UTC).date()  # the same calendar the runner applies waivers with
    for index, waiver in enumerate(policy.waivers):
        path: tuple[str | int, ...] = ("waivers", index)
        if waiver.expires > waiver_horizon(today):
            yield path + ("expires",), (f"{waiver.expires.isoformat()} is more than one year ahead "
                                        f"(latest allowed: {waiver_horizon(today).isoformat()}); re-approve waivers yearly")
