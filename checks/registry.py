"""Evaluators register here by control id; each lives in checks/controls/<id>.py (enc_01.py)."""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable

from vigil.checks.catalogue import catalogue
from vigil.checks.context import Context
from vigil.checks.model import BucketFacts, Evidence, Finding, Status

from vigil import progress

Evaluator = Callable[[Context], Iterable[Finding]]
_EVALUATORS: dict[str, Evaluator] = {}
_READS: dict[str, BucketFacts] = {}
NO_BUCKET_FACTS = BucketFacts()


def evaluator(control_id: str, reads: BucketFacts = NO_BUCKET_FACTS) -> Callable[[Evaluator], Evaluator]:
    """Register a control's evaluator, with the S3 facts it reads per class of bucket (the run
    reads only those; a fact not declared is an error fact when read, so a gap shows in tests)."""
    def register(fn: Evaluator) -> Evaluator:
        if control_id not in catalogue():
            raise ValueError(f"{control_id} is not in the catalogue")
        _EVALUATORS[control_id] = fn
        _READS[control_id] = reads
        return fn

    return register


def evaluators() -> dict[str, Evaluator]:
    import vigil.checks.controls as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(sorted(_EVALUATORS.items()))


def reads() -> dict[str, BucketFacts]:
    """Each control's declared S3 facts."""
    evaluators()
    return dict(sorted(_READS.items()))


def bucket_facts(only: Iterable[str] | None = None) -> BucketFacts:
    """The S3 facts the controls in scope (all, or `only`) read."""
    evaluators()
    wanted = list(only) if only is not None else list(_READS)
    out = NO_BUCKET_FACTS
    for control_id in wanted:
        out = out | _READS.get(control_id, NO_BUCKET_FACTS)
    return out


def evaluate(ctx: Context, only: Iterable[str] | None = None, registry: dict[str, Evaluator] | None = None) -> list[Finding]:
    """Run the evaluators (all, or `only`); one finding per (control, resource).

    `registry` defaults to every evaluator in checks/controls/."""
    registry = evaluators() if registry is None else registry
    wanted = list(only) if only is not None else list(catalogue())
    findings: dict[tuple[str, str], Finding] = {}
    progress.phase("evaluating controls", total=len(wanted))
    for control_id in wanted:
        progress.advance()
        fn = registry.get(control_id)
        if fn is None:  # catalogued but not implemented: say so rather than report nothing
            findings.setdefault((control_id, f"control:{control_id}"), Finding(
                control_id, f"control:{control_id}", "", Status.ERROR,
                f"{control_id} is in the catalogue but has no evaluator (checks/controls/), so it was not judged",
                Evidence("vigil", None)))
            continue
        try:
            produced = list(fn(ctx))
        except Exception as exc:  # a bug in one evaluator must not hide the others' results
            produced = [
                Finding(control_id, f"control:{control_id}", "", Status.ERROR,
                        f"internal error while evaluating {control_id}: {type(exc).__name__}: {exc}",
                        Evidence("vigil", None))
            ]
        for finding in produced:
            findings.setdefault((finding.control, finding.resource), finding)
    return list(findings.values())
