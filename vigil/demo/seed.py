"""Realistic fake personal data in every store, deterministic for a given seed.

Ages are spread across each category's retention through the records' own timestamps
(S3 `LastModified` cannot be backdated), some subjects have closed accounts, some data is
under legal hold. The emulator does not replicate, so the copies AWS replication would
make are written to each replica bucket here.
"""
from __future__ import annotations

import csv
import io
import json
import random
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from vigil.aws import Aws
from vigil.policy import Policy
from vigil.timestamps import iso_z as iso

FIRST = ["Ana", "Ben", "Chloe", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ivan", "Jun", "Kofi", "Lena", "Mateo", "Nia", "Omar", "Priya"]
LAST = ["Silva", "Okafor", "Novak", "Haddad", "Kim", "Larsen", "Moreau", "Petrov", "Quinn", "Rossi", "Sato", "Tanaka"]
STREETS = ["Elm St", "Harbor Rd", "Linden Ave", "Mill Ln", "Oak Blvd", "Quay St"]
AGENTS = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) Safari/604.1",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0"]
PATHS = ["/", "/plans", "/account", "/billing", "/support", "/roaming"]


@dataclass
class Seeded:
    subjects: int = 0
    closed: int = 0
    held_subjects: list[str] = field(default_factory=list)
    objects: dict[str, int] = field(default_factory=dict)  # bucket -> objects written (replicas included)
    records: dict[str, int] = field(default_factory=dict)  # store -> records/items
    legal_holds: list[str] = field(default_factory=list)  # "bucket/key" under an S3 Object Lock legal hold



class Seeder:
    def __init__(self, aws: Aws, policy: Policy, now: datetime, seed: int = 7, subjects: int = 48, replica_suffix: str = "-replica"):
        self.aws, self.policy, self.now, self.rng = aws, policy, now, random.Random(seed)
        self.count, self.replica_suffix = subjects, replica_suffix
        self.out = Seeded()
        self.pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="vigil-seed")
        self.pending: list = []

    # --- helpers --------------------------------------------------------------------

    def age(self, store_category: str, fraction: float = 0.9) -> timedelta:
        """A random age inside the category's retention (never past it: the account starts compliant)."""
        days = self.policy.categories[store_category].retain.approx_days()
        return timedelta(days=self.rng.uniform(0, days * fraction), seconds=self.rng.randint(0, 86399))

    def put(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        """Write to the bucket and, as S3 replication would, to its replica in the backup region."""
        for name, region in ((bucket, self.policy.regions.primary), (bucket + self.replica_suffix, self.policy.regions.backup)):
            client = self.aws.client("s3", region)
            self.pending.append(self.pool.submit(client.put_object, Bucket=name, Key=key, Body=body, ContentType=content_type))
            self.out.objects[name] = self.out.objects.get(name, 0) + 1

    def month(self, store_category: str) -> str:
        """The month of a record of this category (an invoice), as its key names it."""
        return (self.now - self.age(store_category)).strftime("%Y-%m")

    def ip(self) -> str:
        return f"{self.rng.choice([198, 203, 192])}.{self.rng.randint(0, 255)}.{self.rng.randint(0, 255)}.{self.rng.randint(1, 254)}"

    # --- the stores -------------------------------------------------------------------

    def run(self) -> Seeded:
        subjects = self.subjects()
        for store in self.policy.stores:
            kind = getattr(self, f"_{store.kind}_{getattr(store, 'layout', 'items')}", None)
            if kind is not None:
                kind(store, subjects)
        for future in self.pending:
            future.result()
        self.place_legal_holds()
        self.pool.shutdown()
        return self.out

    def subjects(self) -> list[dict[str, Any]]:
        """Accounts: some closed at times spread across the contact retention, a few under legal hold."""
        spec = self.policy.subjects
        people: list[dict[str, Any]] = []
        for n in range(1, self.count + 1):
            first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
            created = self.now - timedelta(days=self.rng.randint(400, 3000))
            person = {
                "account_id": f"ACC-{n:05d}", "name": f"{first} {last}",
                "email": f"{first}.{last}{n}@example.net".lower(), "phone": f"+1-555-{self.rng.randint(100, 999)}-{self.rng.randint(1000, 9999)}",
                "postal_address": f"{self.rng.randint(1, 999)} {self.rng.choice(STREETS)}, Springfield", "created_at": iso(created),
            }
            if n % 4 == 0:  # a quarter of the accounts are closed
                person["closed_at"] = iso(self.now - self.age("contact", 0.95))
                self.out.closed += 1
            people.append(person)
        self.out.subjects = len(people)
        self.out.held_subjects = [people[2]["account_id"], people[7]["account_id"]]
        if spec is not None:
            table = self.aws.client("dynamodb", self.policy.regions.primary)
            for person in people:
                item = {spec.key if k == "account_id" else spec.closed_at if k == "closed_at" else k: {"S": v} for k, v in person.items()}
                self.pending.append(self.pool.submit(table.put_item, TableName=spec.table, Item=item))
            self.out.records[f"table:{spec.table}"] = len(people)
        return people

    def _s3_object(self, store, subjects: list[dict]) -> None:
        """One object per subject (contacts, consent) or per invoice, at the key the policy's
        `subject_from_key` says (`*` filled with the invoice month), else at a default key."""
        category = self.policy.categories[store.category]
        written = 0
        for person in subjects:
            account, month = person["account_id"], None
            if category.keep_at_least is not None:  # proof of consent
                default = f"{store.prefix}consent/{account}.json"
                body = {"account_id": account, "phone": person["phone"], "method": self.rng.choice(["sms-keyword", "web-form", "ivr"]),
                        "opted_in_at": iso(self.now - self.age(store.category)), "opted_out_at": None}
            elif category.after == "account_closed":  # contact details, kept until the account closes
                default = f"{store.prefix}contacts/{account}.json"
                body = {k: person[k] for k in ("account_id", "name", "email", "phone", "postal_address")}
            else:
                month = self.month(store.category)
                default = f"{store.prefix}invoices/{account}/{month}.json"
                body = {"account_id": account, "billing_address": person["postal_address"],
                        "card": f"**** **** **** {self.rng.randint(1000, 9999)}", "amount": round(self.rng.uniform(9, 120), 2)}
            pattern = store.subject_from_key
            if pattern and "*" in pattern:
                key = re.sub(r"\*\*?", month or self.month(store.category), pattern.replace("{subject}", account))
            else:
                key = pattern.replace("{subject}", account) if pattern else default
            self.put(store.bucket, key, json.dumps(body).encode(), "application/json")
            written += 1
            if category.keep_at_least is not None and written <= 2:  # a dispute: two consent records held
                self.out.legal_holds.append(f"{store.bucket}/{key}")
        self.out.records[store.name] = written

    def _s3_jsonl(self, store, subjects: list[dict]) -> None:
        """Web logs, one file every third day. Visitors come through a few ISP networks, so once
        IPs are generalized to /24 and times to the day each group holds at least k records."""
        field_name = store.timestamp_field or "ts"
        networks = [f"{a}.{b}.{c}" for a, b, c in ((198, 51, 100), (203, 0, 113), (192, 0, 2), (100, 64, 12), (172, 20, 7), (10, 44, 3))]
        verify = self.policy.categories[store.category].verify
        k = verify.k if verify is not None else 1
        total = 0
        for day in range(0, self.policy.categories[store.category].retain.approx_days() - 5, 3):
            date = self.now - timedelta(days=day)
            lines = []
            for network in self.rng.sample(networks, 2):
                for _ in range(self.rng.randint(k + 1, k + 6)):
                    person = self.rng.choice(subjects)
                    ts = min(self.now, date.replace(hour=self.rng.randint(0, 23), minute=self.rng.randint(0, 59), second=self.rng.randint(0, 59)))
                    lines.append(json.dumps({field_name: iso(ts), "ip": f"{network}.{self.rng.randint(1, 254)}", "user_agent": self.rng.choice(AGENTS),
                                             "account_id": person["account_id"], "email": person["email"],
                                             "path": self.rng.choice(PATHS), "status": self.rng.choice([200, 200, 200, 302, 404])}))
            total += len(lines)
            self.put(store.bucket, f"{store.prefix}{date.strftime('%Y/%m/%d')}.jsonl", ("\n".join(lines) + "\n").encode(), "application/x-ndjson")
        self.out.records[store.name] = total

    def _s3_csv(self, store, subjects: list[dict]) -> None:
        field_name = store.timestamp_field or "started_at"
        months = self.policy.categories[store.category].retain.approx_days() // 30
        total = 0
        for month in range(months - 1):
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=[field_name, "caller", "callee", "caller_ip", "card_number", "duration"])
            writer.writeheader()
            start = self.now - timedelta(days=30 * month)
            for _ in range(self.rng.randint(10, 20)):
                caller, callee = self.rng.sample(subjects, 2)  # the caller's account: whose record it is (subject_field)
                ts = start - timedelta(days=self.rng.randint(0, 27), seconds=self.rng.randint(0, 86399))
                writer.writerow({field_name: iso(ts), "caller": caller["account_id"], "callee": callee["phone"], "caller_ip": self.ip(),
                                 "card_number": f"4{self.rng.randint(10**14, 10**15 - 1)}", "duration": self.rng.randint(5, 3600)})
                total += 1
            self.put(store.bucket, f"{store.prefix}cdr/{start.strftime('%Y-%m')}.csv", buffer.getvalue().encode(), "text/csv")
        self.out.records[store.name] = total

    def _dynamodb_items(self, store, subjects: list[dict]) -> None:
        if self.policy.subjects is not None and store.table == self.policy.subjects.table:
            return  # the subjects table is seeded with the accounts
        table = self.aws.client("dynamodb", self.policy.regions.primary)
        stamp = store.timestamp_attribute or "created_at"
        count = 0
        for n, person in enumerate(subjects):
            for m in range(n % 3):
                item = {"id": {"S": f"REF-{n:04d}-{m}"}, "referrer": {"S": person["account_id"]},
                        "recipient_email": {"S": f"friend{n}{m}@example.org"}, "survey_answer": {"S": self.rng.choice(["yes", "no", "maybe"])},
                        stamp: {"S": iso(self.now - self.age(store.category))}}
                self.pending.append(self.pool.submit(table.put_item, TableName=store.table, Item=item))
                count += 1
        self.out.records[store.name] = count

    def place_legal_holds(self) -> None:
        """After the objects exist: S3 Object Lock legal holds on the disputed consent records (and their copies)."""
        for path in self.out.legal_holds:
            bucket, key = path.split("/", 1)
            for name, region in ((bucket, self.policy.regions.primary), (bucket + self.replica_suffix, self.policy.regions.backup)):
                self.aws.client("s3", region).put_object_legal_hold(Bucket=name, Key=key, LegalHold={"Status": "ON"})


def hold_policy_text(policy_text: str, held_subjects: list[str]) -> str:
    """The repository's policy with a legal hold appended (as a legal team would add one)."""
    subjects = ", ".join(held_subjects)
    return (policy_text.rstrip("\n") + "\n\n# Added by `vigil demo`: a legal hold on two subjects' data.\n"
            f"holds:\n  - reason: \"Litigation hold, case 2026-014 (demo)\"\n    subjects: [{subjects}]\n")
