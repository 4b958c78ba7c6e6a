"""The demo, start to finish: emulator, deploy, seed, break, then check, retain, report, verify."""
from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from vigil.aws import Aws
from vigil.demo import breakage, seed
from vigil.demo.deployer import EmulatorMocks, Outcome
from vigil.demo.emulator import DEMO_CREDENTIALS, emulator, load_aws_managed_policies, set_root_mfa
from vigil.infra.components.iam import BACKUP_MANAGED_POLICIES
from vigil.infra.mocks import declare_stack
from vigil.infra.settings import StackSettings
from vigil.policy import Policy, load_policy
from vigil.subjects.requests import RequestLog

DEMO_PSEUDONYM_KEY = base64.b64encode(b"vigil-demo-pseudonym-key-32bytes").decode()  # demo only, never for real data


@dataclass
class DemoRun:
    out: Path
    endpoint: str = ""
    deploy: Outcome | None = None
    seeded: seed.Seeded | None = None
    broken: list[breakage.Breakage] = field(default_factory=list)
    stages: dict[str, int] = field(default_factory=dict)  # stage -> exit code
    timings: dict[str, float] = field(default_factory=dict)


def demo_environment() -> None:
    """Fake credentials only: nothing in the demo can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
        os.environ.pop(name, None)
    os.environ.update(DEMO_CREDENTIALS)
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    os.environ["VIGIL_PSEUDONYM_KEY"] = DEMO_PSEUDONYM_KEY  # fake data, demo key: never a real key here


DEMO_SUBJECT = "ACC-00005"  # a seeded account whose erase request the demo records and plans
WAIVED_USER = "demo-intern"  # one deliberate failure is also an accepted, expiring risk


def demo_additions(text: str, today: datetime) -> str:
    """What an organisation adds over time: a waiver with an owner and an expiry, and a request log."""
    if not re.search(r"^waivers:", text, re.M):
        expires = (today + timedelta(days=30)).date().isoformat()
        text += ("\n# Added by `vigil demo`: an accepted risk, shown as waived (its finding keeps its real status).\n"
                 "waivers:\n"
                 f"  - control: MFA-02\n    resource: \"arn:aws:iam::*:user/{WAIVED_USER}\"\n"
                 "    reason: \"Contractor account, MFA device in the mail; console access ends with the contract\"\n"
                 "    owner: security@example.com\n    approval: CHG-2026-0142\n"
                 f"    expires: {expires}\n")
    if not re.search(r"^requests:", text, re.M):
        text += "\n# Added by `vigil demo`: where subject-rights requests are logged.\nrequests: {table: vigil-requests, deadline: P30D}\n"
    return text


def write_demo_policy(source: Path, out: Path, held_subjects: list[str]) -> Path:
    text = source.read_text(encoding="utf-8")
    if not re.search(r"^holds:", text, re.M):
        text = seed.hold_policy_text(text, held_subjects)
    text = demo_additions(text, datetime.now(UTC))
    path = out / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    load_policy(path)  # the demo's policy must be as valid as the original
    return path


def run_demo(policy_path: Path, out: Path, cli: Callable[[list[str]], int], seed_value: int = 7, say: Callable[[str], None] = print) -> DemoRun:
    demo_environment()
    out.mkdir(parents=True, exist_ok=True)
    run = DemoRun(out=out)
    policy: Policy = load_policy(policy_path)
    started = time.monotonic()

    def lap(name: str) -> None:
        run.timings[name] = round(time.monotonic() - started - sum(run.timings.values()), 2)

    with emulator() as endpoint:
        run.endpoint = endpoint
        say(f"emulator: moto on {endpoint} (loopback only, in memory, stopped at the end)")
        aws = Aws(endpoint_url=endpoint)
        account = aws.account_id(policy.regions.primary)
        set_root_mfa(account)
        load_aws_managed_policies(account, set(BACKUP_MANAGED_POLICIES))
        lap("emulator")

        say("deploying the Pulumi program (infra/) into the emulator ...")
        mocks = EmulatorMocks(endpoint, policy.regions.primary, account)
        declare_stack(policy, mocks=mocks)
        run.deploy = mocks.outcome
        say(f"  {len(mocks.outcome.applied)} resources applied, {len(mocks.outcome.failed)} refused by the emulator, "
            f"{len(mocks.outcome.skipped)} of a type the demo does not apply")
        lap("deploy")

        say("seeding fake personal data ...")
        seeder = seed.Seeder(aws, policy, datetime.now(UTC), seed=seed_value,
                             replica_suffix=StackSettings.defaults(policy).replica_suffix)
        run.seeded = seeder.run()
        say(f"  {run.seeded.subjects} subjects ({run.seeded.closed} closed accounts), "
            f"{sum(run.seeded.objects.values())} objects (replica copies included), "
            f"{sum(run.seeded.records.values())} records; legal holds on {', '.join(run.seeded.held_subjects)} "
            f"and {len(run.seeded.legal_holds)} consent records")
        lap("seed")

        run.broken = breakage.break_things(aws, policy, account)
        for item in run.broken:
            say(f"  broken on purpose ({item.control}): {item.what}")
        demo_policy = str(write_demo_policy(policy_path, out, run.seeded.held_subjects))
        lap("break")

        common = ["--policy", demo_policy, "--endpoint-url", endpoint, "--output", str(out)]
        # The signing key sits beside the run folder: a pack must not carry its own private key.
        keys_dir = out.parent / f"{out.name}-keys"
        signing_key = keys_dir / "signing.key"
        if _has_command(cli, "keys") and not signing_key.exists():
            run.stages["keys"] = cli(["keys", "generate", "--out", str(keys_dir)])
        run.stages["check"] = cli(["check", *common, "--explain"])
        lap("check")
        if _has_command(cli, "subject"):
            # One open erase request, and the plan that would answer it (a dry run: nothing changes).
            RequestLog(aws, load_policy(demo_policy)).create_table()
            say(f"subject rights: an erase request for {DEMO_SUBJECT}, and its plan ...")
            subject_out = out.parent / f"{out.name}-subject"  # beside the pack: it names a person
            run.stages["subject request"] = cli(["subject", "request", "add", DEMO_SUBJECT, "--kind", "erase", *common[:4]])
            run.stages["subject erase"] = cli(["subject", "erase", DEMO_SUBJECT, *common[:4], "--output", str(subject_out)])
            lap("subject")
        if _has_command(cli, "retain"):
            # A year ahead: what the job will delete and anonymize as data ages (nothing is past retention today).
            as_of = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
            say(f"retention dry run as of {as_of} (one year from now; nothing changes) ...")
            run.stages["retain"] = cli(["retain", *common, "--as-of", as_of])
            lap("retain")
        if _has_command(cli, "report"):
            # The signed pack also goes to the stack's Object Lock evidence bucket, as in production.
            evidence_bucket = f"{StackSettings.defaults(policy).name_prefix}-evidence"
            report = ["report", str(out), "--policy", demo_policy, "--endpoint-url", endpoint, "--region", policy.regions.primary,
                      "--upload", f"s3://{evidence_bucket}/packs/{out.name}"]
            if signing_key.exists():
                report += ["--signing-key", str(signing_key)]
            run.stages["report"] = cli(report)
            if _has_command(cli, "verify"):
                run.stages["verify"] = cli(["verify", str(out)])
            lap("report")
    return run


def _has_command(cli: Callable[[list[str]], int], name: str) -> bool:
    from vigil.cli.main import build_parser

    choices = next(a.choices for a in build_parser()._actions if getattr(a, "choices", None))
    return name in choices


def findings(out: Path) -> list[dict]:
    path = out / "findings.json"
    return json.loads(path.read_text())["findings"] if path.exists() else []
