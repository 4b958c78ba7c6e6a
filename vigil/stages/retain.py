"""The retain stage: plan retention (a dry run), or apply it, then verify; writes the plan and the ledger."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from vigil.accounts.plans import plan_accounts
from vigil.accounts.sources import resolve
from vigil.aws import Aws
from vigil.checks.waivers import load_checked_policy
from vigil.errors import UsageError
from vigil.policy import Policy
from vigil.retention.accounts import AccountsRetention, run_retention_accounts
from vigil.retention.engine import LEDGER_FILE, RetentionRun, run_retention
from vigil.retention.guard import refuse_future_as_of
from vigil.retention.keys import load_keys
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


@dataclass(frozen=True)
class RetainOutcome:
    run: RetentionRun | None  # None for a run over many accounts (see `accounts`)
    directory: Path
    accounts: AccountsRetention | None = None  # --org / --accounts-file: each account's run in accounts/<id>/

    @property
    def plan(self) -> Path:
        return self.directory / "retention-plan.json"

    @property
    def ledger(self) -> Path | None:
        """The ledger, when this run wrote one (it applied and stayed within --max-delete)."""
        if self.run is None:
            return None  # each account's own ledger is in accounts/<id>/
        return self.directory / LEDGER_FILE if self.run.apply and not self.run.max_delete_exceeded else None

    @property
    def exit_code(self) -> int:
        return self.accounts.exit_code if self.accounts is not None else (self.run.exit_code if self.run else 1)


def retain(options: RetainOptions) -> RetainOutcome:
    refuse_future_as_of(options.as_of, options.apply)  # before the policy, a folder or AWS
    check_engine(options.engine)  # an unknown engine, or spark without pyspark: exit 2 before anything
    policy = load_checked_policy(options.policy)
    if options.max_delete is not None and options.max_delete < 0:
        raise UsageError("--max-delete must be 0 or more")
    known = {s.name for s in policy.stores}
    unknown = sorted(set(options.stores) - known)
    if unknown:
        raise UsageError(f"unknown store {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    aws = Aws(profile=options.profile, endpoint_url=options.endpoint_url)
    if options.accounts.many:
        if options.engine != "local":
            raise UsageError("--engine spark runs one account's plan; many accounts (--org, --accounts-file) use --engine local")
        return retain_accounts(options, policy, aws)
    keys = load_keys(policy, aws)  # exit 2 before anything changes when a key is missing
    policy = policy.for_account(aws.account_id(policy.regions.primary))  # exit 3 when the environment is broken
    run_id = new_run_id()
    directory = options.output_dir(run_id)
    result = run_retention(aws, policy, keys, options.when(), directory, run_id, apply=options.apply,
                           max_delete=options.max_delete, store_names=list(options.stores) or None, workers=options.workers,
                           lock_bucket=options.lock_bucket, engine=options.engine, spark_master=options.spark_master)
    return RetainOutcome(result, directory)


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
