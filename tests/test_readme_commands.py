"""Every shell block of README.md runs as written, against the demo's emulator (`vigil demo --keep-running`).

Each ```sh block is run line by line with bash in a scratch folder that holds what the README
presumes: the demo's policy as ./policy.yaml, its pack as evidence/RUN, local exports for
`vigil anonymize` (export.jsonl.gz, calls.csv), an earlier run as
evidence/last-week, the signer's public key as ./signing.pub (the auditor's copy), the
project's .venv, and the environment the demo's `export` line sets. A line passes when it exits
0 or 1 (1: a control failed, or nothing was found for a subject: the command ran and answered)
and prints no usage error, no "command not found" and no traceback.

A block or line that needs something this machine does not offer (a real AWS account, Pulumi,
Docker, Kubernetes, the package index) is skipped by name below, with the reason; every block
must be either run or listed, and every listing must still match the README.
"""
from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# The start of a block's first line -> why the whole block is not run here.
SKIPPED_BLOCKS = {
    "make demo": "runs the demo and the whole test suite: the tests themselves (the demo is tests/test_demo.py)",
    "pip install vigil": "installs from the package index; the tests run without network",
    "vigil demo --keep-running": "waits for Ctrl-C; this test starts it itself, and tests/test_demo.py tests it",
    "make install": "deploys with Pulumi to a real account (pulumi login, stack init, up)",
    "vigil accounts list --org": "needs an AWS Organization with member accounts and their roles (the demo's account is "
                                 "in none; tests/test_accounts_check.py builds one in moto)",
    "docker build": "needs Docker",
    "python -m build --wheel": "builds a wheel from the package index, uploads to a placeholder bucket, deploys with Pulumi",
    "kubectl create namespace vigil": "needs a Kubernetes cluster",
    "deploy/build_lambda.sh": "builds a Linux bundle with pip from the package index (no network)",
    "vigil run --policy policy.yaml --signing-key keys/signing.key --upload s3://example-evidence/packs \\":
        "uploads to a placeholder bucket and writes metrics under /var/lib/node_exporter",
}
# A line (by a piece of it) -> why that line alone is not run.
SKIPPED_LINES = {
    "--profile audit": "needs an AWS profile named 'audit' in ~/.aws/config",
    "kms:alias/vigil-evidence": "needs an AWS KMS Ed25519 signing key (the emulator has none)",
    "s3://evidence-bucket/packs": "names a placeholder Object-Lock bucket",
    "REQ-ID": "a placeholder for the id that `vigil subject request add` printed",
}
# Placeholders the README spells for the reader, and what stands in for them here.
SUBSTITUTE = {"http://127.0.0.1:5000": "{endpoint}"}
FAILURES = ("usage: ", "error: unrecognized", "command not found", "Traceback (most recent call last)", "invalid choice",
            "invalid policy file", "No such file or directory")


def readme_blocks() -> list[tuple[int, str]]:
    """(line number, text) of each ```sh block of README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in re.finditer(r"^```sh\n(.*?)^```", text, re.M | re.S)]


def commands(block: str) -> list[str]:
    """The block's command lines: continuations joined, comment-only lines left out."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def skipped_block(block: str) -> str | None:
    first = block.strip().splitlines()[0]
    return next((why for start, why in SKIPPED_BLOCKS.items() if first.startswith(start)), None)


def write_exports(root: Path) -> None:
    """The local exports the `vigil anonymize` block reads (fake people: 20 web-log records, 10 call records)."""
    logs = [{"ts": f"2026-03-04T10:{i:02d}:00Z", "ip": f"203.0.113.{i % 3}", "user_agent": "Mozilla/5.0",
             "account_id": f"ACC-{i % 4:05d}", "email": f"user{i}@example.com", "path": "/plans", "status": 200} for i in range(20)]
    with gzip.open(root / "export.jsonl.gz", "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in logs)
    rows = ["caller,callee,caller_ip,started_at,card_number,duration"]
    rows += [f"+1555000{i:04d},+1555999{i:04d},198.51.100.{i},2026-03-04T10:{i:02d}:00Z,4111111111111111,{60 + i}" for i in range(10)]
    (root / "calls.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("readme")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIGIL_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Retention's lock files: this sandbox's own, or the README's retain runs of two xdist workers (and of
    # any other vigil on the machine) meet on the same bucket names in the shared <tmp>/vigil-locks.
    env["VIGIL_LOCK_DIR"] = str(tmp_path_factory.mktemp("readme-locks"))
    demo = subprocess.Popen([sys.executable, "-m", "vigil", "demo", "--keep-running", "--output", str(root / "evidence" / "RUN")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in demo.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if line.strip().startswith("export "):
                break
        assert lines and lines[-1].strip().startswith("export "), "".join(lines[-40:])
        env.update(item.split("=", 1) for item in lines[-1].strip().removeprefix("export ").split())
        shutil.copy(root / "evidence" / "RUN-policy.yaml", root / "policy.yaml")
        (root / ".venv").symlink_to(Path(sys.executable).parent.parent)
        write_exports(root)
        (root / "evidence" / "last-week").mkdir()
        shutil.copy(root / "evidence" / "RUN" / "findings.json", root / "evidence" / "last-week" / "findings.json")
        yield root, env
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            demo.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.wait()


def test_every_block_is_run_or_skipped_for_a_listed_reason() -> None:
    firsts = [block.strip().splitlines()[0] for _, block in readme_blocks()]
    stale = [start for start in SKIPPED_BLOCKS if not any(first.startswith(start) for first in firsts)]
    assert not stale, stale
    lines = [line for _, block in readme_blocks() for line in commands(block)]
    for piece in SKIPPED_LINES:
        assert any(piece in line for line in lines), piece


@pytest.mark.parametrize("number, block", [pytest.param(n, b, id=f"README.md:{n}") for n, b in readme_blocks()])
def test_readme_block_runs_as_written(number: int, block: str, sandbox: tuple[Path, dict[str, str]]) -> None:
    root, env = sandbox
    reason = skipped_block(block)
    if reason:
        pytest.skip(reason)
    if "--public-key signing.pub" in block or "-inkey ../../signing.pub" in block:
        shutil.copy(root / "keys" / "signing.pub", root / "signing.pub")  # the auditor's copy, from the organisation
    script, ran = [], []
    logs = root.parent / f"logs-{number}"  # outside the folder the block works in (it may cd into a pack)
    logs.mkdir(exist_ok=True)
    for index, line in enumerate(commands(block)):
        reason = next((why for piece, why in SKIPPED_LINES.items() if piece in line), None)
        if reason:
            continue
        for placeholder, value in SUBSTITUTE.items():
            line = line.replace(placeholder, value.format(endpoint=env["AWS_ENDPOINT_URL"]))
        ran.append(line)
        script.append(f"{{ {line}\n}} > {logs}/out{index} 2>&1; echo \"rc{index}=$?\" >> {logs}/codes")
    (logs / "codes").write_text("")
    done = subprocess.run(["bash", "-c", "\n".join(script)], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    codes = dict(line.split("=") for line in (logs / "codes").read_text().split())
    for index, line in enumerate(commands(block)):
        if f"rc{index}" not in codes:
            continue
        output = (logs / f"out{index}").read_text()
        assert codes[f"rc{index}"] in ("0", "1"), f"README.md:{number}: {line!r} exited {codes[f'rc{index}']}\n{output[-3000:]}"
        bad = [marker for marker in FAILURES if marker in output]
        assert not bad, f"README.md:{number}: {line!r} printed {bad}\n{output[-3000:]}"
    assert ran, "a block with nothing run should be listed in SKIPPED_BLOCKS"


def test_the_verify_block_proves_the_pack_the_keys_block_signed(sandbox: tuple[Path, dict[str, str]]) -> None:
    """The blocks ran in README order; the pack they leave verifies with the printed key (origin proven)."""
    root, env = sandbox
    if not (root / "keys" / "signing.pub").exists():
        pytest.skip("the keys block has not run (run the whole file)")
    done = subprocess.run([sys.executable, "-m", "vigil", "verify", "evidence/RUN", "--public-key", "keys/signing.pub"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((root / "evidence" / "RUN" / "manifest.json").read_text())["files"]
