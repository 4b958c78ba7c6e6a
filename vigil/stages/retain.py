"""The retain stage: plan retention (a dry run), or apply it, then verify; writes the plan and the ledger."""
from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from vigil.accounts.plans import plan_accounts
from vigil.accounts.sources import resolve
from vigil.aws import Aws
from vigil.checks.waivers import load_checked_policy
from vigil.engines import CLUSTER_ENGINES, EXECUTORS
from vigil.errors import UsageError
from vigil.policy import Policy
from vigil.retention.accounts import AccountsRetention, run_retention_accounts
from vigil.retention.batch_jobs import EXECUTOR, BatchSettings, Job, batch_settings
from vigil.retention.batch_reports import BatchRun, Collector
from vigil.retention.cluster_engine import ClusterSettings
from vigil.retention.engine import LEDGER_FILE, RetentionRun, run_retention
from vigil.retention.guard import is_future, refuse_future_as_of
from vigil.retention.keys import load_keys
from vigil.retention.ledger import Ledger
from vigil.retention.locks import run_locks
from vigil.retention.spark_engine import check_engine
from vigil.stages.common import Target, new_run_id


@dataclass(frozen=True)
class RetainOptions(Target):
    apply: bool = False  # False: plan only, nothing changes
    max_delete: int | None = None  # stop, deleting nothing, if the plan deletes more than this
    stores: tuple[str, ...] = ()  # empty: every store
    workers: int = 16
    lock_bucket: str | None = None  # with apply: an S3 lock object per store here too (other machines)
    engine: str = "local"  # local, or spark: the same plan and per-action code as Spark tasks
    spark_master: str = "local[*]"
    executor: str | None = None  # local, batch-operations (S3 versions as S3 Batch Operations jobs), None: each store's `executor:`
    batch_bucket: str | None = None  # manifests and completion reports ({region} for one bucket per region); else $VIGIL_BATCH_BUCKET
    batch_function: str | None = None  # the Lambda the jobs invoke: a name, or an ARN; else $VIGIL_BATCH_FUNCTION
    batch_role: str | None = None  # the role Batch Operations runs the jobs as; else $VIGIL_BATCH_ROLE
    batch_priority: int = 10
    collect: str | None = None  # a job id: read that job's completion report into the ledger of --output, then verify
    cluster: ClusterSettings | None = None  # engine glue or emr-serverless: the job, the artifacts bucket (cluster_engine.py)


@dataclass(frozen=True)
class RetainOutcome:
    run: RetentionRun | None  # None for a run over many accounts (see `accounts`)
    directory: Path
    accounts: AccountsRetention | None = None  # --org / --accounts-file: each account's run in accounts/<id>/
    collected: list[Job] = field(default_factory=list)  # --collect: the job read (or still pending)

    @property
    def plan(self) -> Path:
        return self.directory / "retention-plan.json"

    @property
    def ledger(self) -> Path | None:
        """The ledger, when this run wrote one (it applied and stayed within --max-delete)."""
        if self.run is None:  # each account's own ledger is in accounts/<id>/ (--collect: the folder's)
            return self.directory / LEDGER_FILE if self.collected else None
        wrote = (self.run.apply or self.run.batch_jobs) and not self.run.max_delete_exceeded
        return self.directory / LEDGER_FILE if wrote else None

    @property
    def exit_code(self) -> int:
        if self.collected:
            return 1 if any(job.failed for job in self.collected) else 0
        return self.accounts.exit_code if self.accounts is not None else (self.run.exit_code if self.run else 1)


def retain(options: RetainOptions) -> RetainOutcome:
    refuse_future_as_of(options.as_of, options.apply)  # before the policy, a folder or AWS
    check_engine(options.engine)  # an unknown engine, or spark without pyspark: exit 2 before anything
    if options.engine in CLUSTER_ENGINES and (options.cluster is None or options.cluster.engine != options.engine):
        raise UsageError(f"--engine {options.engine} needs its job and artifacts bucket (cluster_engine.settings_for)")
    policy = load_checked_policy(options.policy)
    settings, batch_stores = check_executor(options, policy)  # likewise the executor's flags and the stores it takes
    if options.max_delete is not None and options.max_delete < 0:
        raise UsageError("--max-delete must be 0 or more")
    known = {s.name for s in policy.stores}
    unknown = sorted(set(options.stores) - known)
    if unknown:
        raise UsageError(f"unknown store {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    aws = Aws(profile=options.profile, endpoint_url=options.endpoint_url)
    if options.collect is not None:
        return collect(options, policy, aws, settings)
    if options.accounts.many:
        if options.engine != "local":
            raise UsageError(f"--engine {options.engine} runs one account's plan; many accounts (--org, --accounts-file) "
                             "use --engine local; nothing was changed")
        return retain_accounts(options, policy, aws)
    keys = load_keys(policy, aws)  # exit 2 before anything changes when a key is missing
    policy = policy.for_account(aws.account_id(policy.regions.primary))  # exit 3 when the environment is broken
    run_id = new_run_id()
    directory = options.output_dir(run_id)
    result = run_retention(aws, policy, keys, options.when(), directory, run_id, apply=options.apply,
                           max_delete=options.max_delete, store_names=list(options.stores) or None, workers=options.workers,
                           lock_bucket=options.lock_bucket, engine=options.engine, spark_master=options.spark_master,
                           batch=BatchRun(aws, keys, settings, options.apply, workers=options.workers, stores=batch_stores)
                           if settings else None,
                           cluster=options.cluster)
    return RetainOutcome(result, directory)


def check_executor(options: RetainOptions, policy: Policy) -> tuple[BatchSettings | None, frozenset[str] | None]:
    """Which stores go to S3 Batch Operations (None: every S3 store) and its settings, from --executor (or,
    without it, each store's `executor:`) and the --batch-* flags or VIGIL_BATCH_*: exit 2 before anything
    is read from AWS or created."""
    if options.executor is not None and options.executor not in EXECUTORS:
        raise UsageError(f"--executor {options.executor!r}: expected one of {', '.join(EXECUTORS)}")
    flags = (options.batch_bucket or os.environ.get("VIGIL_BATCH_BUCKET"), options.batch_function or os.environ.get("VIGIL_BATCH_FUNCTION"),
             options.batch_role or os.environ.get("VIGIL_BATCH_ROLE"))
    if options.collect is not None:
        if not options.output:
            raise UsageError("--collect needs --output DIR: the folder of the run that created the job (its ledger)")
        if options.apply or options.accounts.many:
            raise UsageError("--collect reads a job's results into the ledger; it takes no --apply, --org or --accounts-file")
        return (batch_settings(EXECUTOR, *flags, options.batch_priority) if all(flags) else None), None  # to re-ask for a job
    chosen = [s.name for s in policy.s3_stores if s.executor == EXECUTOR and (not options.stores or s.name in options.stores)]
    if options.executor == EXECUTOR:
        stores: frozenset[str] | None = None
    elif options.executor is None and chosen:
        stores = frozenset(chosen)
    else:
        return None, None
    why = f"--executor {EXECUTOR}" if stores is None else f"store {chosen[0]} (policy: executor: {EXECUTOR})"
    settings = batch_settings(EXECUTOR, *flags, options.batch_priority, why)
    if is_future(options.when()):
        raise UsageError(f"{why} creates jobs that delete once confirmed; --as-of in the future is a preview: "
                         "use --executor local for it")
    if options.engine != "local" or options.accounts.many:
        raise UsageError(f"{why}: one account's plan with --engine local (or --executor local)")
    return settings, stores


def collect(options: RetainOptions, policy: Policy, aws: Aws, settings: BatchSettings | None) -> RetainOutcome:
    """--collect JOB_ID: the job's completion report into the ledger of --output, then verify its versions."""
    directory = Path(options.output or ".")
    if not (directory / LEDGER_FILE).is_file():
        raise UsageError(f"--collect: {directory / LEDGER_FILE} does not exist (use the --output folder of the run that created the job)")
    keys = load_keys(policy, aws)
    policy = policy.for_account(aws.account_id(policy.regions.primary))
    with run_locks(directory, [], False), closing(Ledger(directory / LEDGER_FILE, new_run_id(), policy.sha256, keys.fingerprint)) as ledger:
        jobs = Collector(aws, keys, settings, workers=options.workers).collect(ledger, only=options.collect)
    return RetainOutcome(None, directory, collected=jobs)


def retain_accounts(options: RetainOptions, policy: Policy, aws: Aws) -> RetainOutcome:
    """Each account with its retention role, its own policy and keys; plans and ledgers in accounts/<id>/."""
    aws.account_id(policy.regions.primary)  # exit 3 when the environment is broken
    accounts = resolve(aws, policy.regions.primary, options.accounts)
    plans = plan_accounts(accounts, policy, options.regions, load_checked_policy)
    for own in {id(p.policy): p.policy for p in plans}.values():  # keys read from files or the environment: exit 2 now
        if not any(source is not None and source.source == "kms" for source in (own.keys.pseudonymize, own.keys.evidence)):
            load_keys(own)
    run_id = new_run_id()
    directory = options.output_dir(run_id)
    result = run_retention_accounts(aws, policy, accounts, plans, options.when(), directory, run_id, apply=options.apply,
                                    max_delete=options.max_delete, store_names=list(options.stores) or None,
                                    parallel=options.accounts.parallel, workers=options.workers, lock_bucket=options.lock_bucket)
    return RetainOutcome(None, directory, accounts=result)
