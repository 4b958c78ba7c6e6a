"""The catalogue and the evaluators describe the same set of controls."""
from __future__ import annotations

import dataclasses

from vigil.checks.catalogue import catalogue
from vigil.checks.context import Context
from vigil.checks.model import Bucket, Inventory, Status
from vigil.checks.registry import evaluate, evaluators

from tests.helpers import repo_policy
from vigil.s3_facts import S3_FACTS


def test_every_catalogued_control_has_an_evaluator_and_every_evaluator_is_catalogued() -> None:
    assert set(evaluators()) == set(catalogue())


def test_a_catalogued_control_without_an_evaluator_is_an_error_finding() -> None:
    registry = evaluators()
    del registry["ENC-01"]
    ctx = Context(repo_policy(), Inventory(account_id="123456789012", regions=["us-east-1"]))
    findings = evaluate(ctx, only=["ENC-01", "MFA-01"], registry=registry)
    missing = [f for f in findings if f.control == "ENC-01"]
    assert len(missing) == 1 and missing[0].status == Status.ERROR
    assert "no evaluator" in missing[0].reason
    assert any(f.control == "MFA-01" for f in findings)  # the others are still judged


def test_the_bucket_record_has_one_field_per_row_of_the_s3_facts_table() -> None:
    fields = {f.name for f in dataclasses.fields(Bucket)} - {"name", "region"}
    assert fields == set(S3_FACTS)
    unread = Bucket("b", region=None)  # type: ignore[arg-type]
    assert all(getattr(unread, name).api == row.api and not getattr(unread, name).ok for name, row in S3_FACTS.items())
