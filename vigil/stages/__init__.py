"""Typed entry points for the stages a job runs: options in, outcome out.

    check.check(CheckOptions)            -> CheckOutcome     read live state, evaluate, write findings.json
    retain.retain(RetainOptions)         -> RetainOutcome    plan (or apply) retention, write the plan and ledger
    requests.process(ProcessOptions)     -> ProcessOutcome   erase due subject requests, write their counts
    report.report(ReportOptions)         -> ReportOutcome    render, sign and upload the evidence pack
    verify.verify(VerifyOptions)         -> VerifyOutcome    check a pack's signature, digests and ledger chain

The command line (`vigil.cli`), the scheduler, the demo and the Lambda handler all call these;
none of them builds a command line for another. Bad input raises UsageError (exit 2), a broken
environment EnvironmentFailure (exit 3); `outcome.exit_code` is 0 or 1 otherwise.
"""
