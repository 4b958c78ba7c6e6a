"""`vigil retain` as a function: inventory -> plan -> (apply -> verify) with a ledger, resumable.

The plan is streamed to a private spool (real keys, sealed, deleted at the end: spool.py) and
to retention-plan.actions.jsonl (keyed hashes); apply reads the spool, so it does exactly the
plan and nothing else, and memory stays flat. A run holds its folder's lock, and with --apply
each store's (locks.py); it resumes only its own folder's ledger, of the same policy and key.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from vigil import __version__, progress, safe_write
from vigil.aws import Aws
from vigil.policy import Policy
from vigil.policy.models import PostgresStore, RDSStore, Store
from vigil.timestamps import iso_z as iso

from . import ledger as ledgers
from .apply import Applier, Stats, hashed_target
from .backups import plan_recovery_points, vault_regions
from .cluster_engine import ClusterApplier, ClusterSettings, finish_pending
from .guard import JUDGED_AT, is_future, refuse_future_as_of
from .keys import RetentionKeys
from .locks import run_locks
from .plan import KINDS, Summary, action_id
from .postgres import PostgresRetention, is_postgres_action
from .postgres.apply import apply_planned
from .resume import Resume
from .scan import ScanContext, anonymizer_for, load_closed, scan_store, store_rules
from .spool import Spool
from .verify import verify_stores

SCHEMA = "vigil.retention-plan/v1"
PLAN_FILE, ACTIONS_FILE, LEDGER_FILE = "retention-plan.json", "retention-plan.actions.jsonl", "ledger.jsonl"



@dataclass
class RetentionRun:
    run_id: str
    as_of: datetime
    policy: Policy
    apply: bool
    summaries: list[Summary] = field(default_factory=list)
    stats: Stats | None = None
    max_delete_exceeded: bool = False
    resumed: int = 0
    not_covered: list[str] = field(default_factory=list)  # stores retention cannot reach (RDS)
    engine: str = "local"  # what applies the plan: local, or spark (spark_engine.py)
    batch_jobs: list[Any] = field(default_factory=list)  # --executor batch-operations: batch_jobs.Job, collected or created

    @property
    def totals(self) -> dict[str, dict[str, int]]:
        counts, size = dict.fromkeys(KINDS, 0), dict.fromkeys(KINDS, 0)
        for s in self.summaries:
            for kind in KINDS:
                counts[kind] += s.counts[kind]
                size[kind] += s.bytes[kind]
        return {"counts": counts, "bytes": size}

    @property
    def deletes(self) -> int:
        totals = self.totals["counts"]
        return totals["delete"] + totals["suppress"]

    @property
    def exit_code(self) -> int:
        failed_actions = bool(self.stats and self.stats.failed)
        verify_failed = any(s.verify["status"] == "fail" for s in self.summaries)
        errors = any(s.counts["error"] or s.errors for s in self.summaries)
        batch_failed = any(job.failed for job in self.batch_jobs)
        return 1 if (self.max_delete_exceeded or failed_actions or verify_failed or errors or batch_failed) else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "run": {"id": self.run_id, "as_of": iso(self.as_of), "policy_sha256": self.policy.sha256,
                    "tool_version": __version__, "mode": "apply" if self.apply else "dry-run",
                    "judged_at": JUDGED_AT, "preview": is_future(self.as_of), "engine": self.engine},
            "stores": [s.to_json() for s in self.summaries],
            "not_covered": [{"store": name, "reason": RDS_REASON} for name in self.not_covered],
            "totals": self.totals,
            **({"batch_jobs": [job.to_json() for job in self.batch_jobs]} if self.batch_jobs else {}),
        }

    def write(self, directory: Path) -> Path:
        return safe_write.write_text(directory / PLAN_FILE, json.dumps(self.to_json(), indent=2) + "\n")


RDS_REASON = ("rows inside a database are beyond the AWS APIs vigil uses; enforce this category with the "
              "database's own retention job")


def selected_stores(policy: Policy, names: list[str] | None, rds: bool = False, postgres: bool = False) -> list:
    """The AWS-API stores (default), the RDS stores retention cannot reach, or the PostgreSQL tables."""
    stores: list[Store]
    if postgres:
        stores = [s for s in policy.stores if isinstance(s, PostgresStore)]
    else:
        stores = [s for s in policy.stores if isinstance(s, RDSStore) == rds and not isinstance(s, PostgresStore)]
    return [s for s in stores if s.name in names] if names else stores


def run_retention(aws: Aws, policy: Policy, keys: RetentionKeys, as_of: datetime, out_dir: Path, run_id: str,
                  apply: bool = False, max_delete: int | None = None, store_names: list[str] | None = None,
                  workers: int = 16, lock_bucket: str | None = None, engine: str = "local",
                  spark_master: str = "local[*]", batch: Any = None,
                  cluster: ClusterSettings | None = None) -> RetentionRun:
    """`batch`: a batch_reports.BatchRun (--executor batch-operations), handed in so that this module
    never imports it and retain's IAM grants s3:CreateJob only to runs that use it (vigil.permissions)."""
    refuse_future_as_of(as_of, apply)
    stores = selected_stores(policy, store_names)
    tables = selected_stores(policy, store_names, postgres=True)
    if apply or batch is not None:  # before anything is read: a ledger of another policy or key is never continued
        ledgers.check_owner(out_dir / LEDGER_FILE, policy.sha256, keys.fingerprint)
    s3 = aws.client("s3", policy.regions.primary) if lock_bucket else None
    with run_locks(out_dir, stores + tables, apply, s3, lock_bucket):
        run = RetentionRun(run_id, as_of, policy, apply, not_covered=[s.name for s in selected_stores(policy, store_names, rds=True)],
                           engine=engine)
        return _run(aws, keys, out_dir, run, max_delete, stores, tables, workers, spark_master, batch, cluster)


def _run(aws: Aws, keys: RetentionKeys, out_dir: Path, run: RetentionRun, max_delete: int | None, stores: list,
         tables: list, workers: int, spark_master: str, batch: Any = None,
         cluster: ClusterSettings | None = None) -> RetentionRun:
    policy, as_of, run_id, apply = run.policy, run.as_of, run.run_id, run.apply
    new_ledger = lambda: ledgers.Ledger(out_dir / LEDGER_FILE, run_id, policy.sha256, keys.fingerprint, run.engine)  # noqa: E731
    if apply:  # a job run a killed driver left (glue, emr-serverless) ends and is collected before anything is planned
        run.resumed += finish_pending(aws, keys, out_dir / LEDGER_FILE, run_id, policy.sha256, run.engine, cluster)
    if batch is not None:  # earlier jobs first: what they deleted is then not planned again
        run.batch_jobs = batch.collect(out_dir / LEDGER_FILE, new_ledger)
    # A Batch Operations job's intent is resolved by collecting the job (batch_reports.py), not by listing.
    open_intents = {i: e for i, e in ledgers.dangling(out_dir / LEDGER_FILE).items() if "executor" not in e.get("target", {})}
    resume = Resume.from_intents(open_intents) if apply else Resume.empty()
    closed, subjects_error = load_closed(aws, policy, stores + tables)
    pg = PostgresRetention(aws, policy, keys, as_of, closed, subjects_error)
    backup_regions = vault_regions(aws, policy.regions_in_scope)
    spool = Spool(out_dir, ACTIONS_FILE, lambda action: hashed_target(action, keys))
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vigil-read") as pool, \
                ThreadPoolExecutor(max_workers=max(1, min(len(stores), 8)), thread_name_prefix="vigil-store") as per_store:
            progress.phase(f"planning retention: {len(stores)} store(s)", total=len(stores) + len(tables))
            context = ScanContext(aws, policy, keys, as_of, closed, pool, spool.emit, resume.observe,
                                  subjects_error=subjects_error, spark_master=spark_master if run.engine == "spark" else None)

            def one(store) -> Summary:
                summary = scan_store(context, store)[0]
                rules = store_rules(policy, store, as_of, closed)
                for action in plan_recovery_points(aws, backup_regions, summary.resource, rules, summary):
                    spool.emit(action)
                progress.advance()
                return summary
            run.summaries = list(per_store.map(one, stores)) + [pg.plan(table, spool.emit) for table in tables]
        spool.close()
        run.write(out_dir)
        if not apply and batch is None:
            return run
        if max_delete is not None and run.deletes > max_delete:
            run.max_delete_exceeded = True
            return run
        ledger = new_ledger()
        try:
            if batch is not None:  # without --apply the jobs wait for a person to confirm them, and nothing else is done
                reports = {s.resource: datetime.fromisoformat(s.inventory["created"]) for s in run.summaries if s.inventory}
                run.batch_jobs += batch.submit(ledger, (a for a in spool.actions() if batch.takes(a)), run.batch_jobs, reports)
                if not apply:
                    run.write(out_dir)
                    return run
            readable = {s.store for s in run.summaries if not any(e["object"] == s.resource or e["object"] in s.replicas
                                                                 for e in s.errors)}
            run.resumed += pg.resolve(ledger, resume.intents) + resume.resolve(ledger, readable)
            contexts = {s.name: (s, store_rules(policy, s, as_of, closed), anonymizer_for(policy, s, keys)) for s in stores}
            progress.phase("applying the plan (actions done)")
            datasets = {(s.store, d.location): d.for_apply() for s in run.summaries for d in s.datasets}
            for summary, judgement in ((s, d) for s in run.summaries for d in s.datasets):  # dataset-wide k, and why refused
                judged = {"action": "judge_dataset_k", "store": summary.store, "location": judgement.location}
                ledger.write("judgement", {**judged, "action_id": action_id(judged)}, judgement.to_json(), None, judgement.refused)
            applier = Applier(aws, keys, ledger, contexts.__getitem__, workers, datasets)
            actions = (a for a in spool.actions() if not is_postgres_action(a) and not (batch is not None and batch.takes(a)))
            if cluster is not None:
                run.stats = ClusterApplier(applier, aws, policy, cluster, run_id, as_of, closed, [s.name for s in stores],
                                           policy.regions.primary).run(actions)
            elif run.engine == "spark":
                from .spark_engine import SparkApplier
                run.stats = SparkApplier(applier, aws, contexts, spark_master).run(actions)
            else:
                run.stats = applier.run(actions)
            apply_planned(pg.work, keys, ledger, [a for a in spool.actions() if is_postgres_action(a)], run.stats)
        finally:
            ledger.close()
        progress.phase("verifying: nothing past retention remains")
        submitted = {job.store for job in run.batch_jobs if job.job_id is not None and not job.collected}
        remaining = verify_stores(aws, policy, keys, [s for s in stores if s.name not in submitted], as_of, closed,
                                  subjects_error, workers)
        for table in tables:
            checked = pg.verify(table, policy.grace)
            remaining[table.name] = (checked.outstanding, bool(checked.errors))
        for summary in run.summaries:
            left, unreadable = remaining.get(summary.store, (0, False))
            summary.verify = {"status": "fail" if left or unreadable else "pass", "remaining": left}
            if summary.store in submitted:  # its job has not run yet: verified when it is collected
                summary.verify = {"status": "pending", "remaining": 0}
        run.write(out_dir)
        return run
    finally:
        spool.close()
        spool.remove()
