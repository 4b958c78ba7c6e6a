"""`vigil merge`: per-account packs (as a Step Functions map of `vigil run` makes them) joined into one signed pack."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from vigil.evidence import keys, sample
from vigil.evidence.render import write_report

from vigil.cli.main import main

ACCOUNTS = ("111111111111", "222222222222")


def account_pack(folder: Path, account: str, private: Path) -> Path:
    pack = sample.write_sample(folder, run_id=f"20261101T020000Z-{account[:6]}")
    findings = json.loads((pack / "findings.json").read_text())
    findings["run"]["account"] = account
    (pack / "findings.json").write_text(json.dumps(findings))
    write_report(pack, None, str(private))
    return pack


@pytest.fixture
def packs(tmp_path: Path) -> tuple[list[Path], Path, Path]:
    private, public = keys.generate(tmp_path / "keys")
    return [account_pack(tmp_path / account, account, private) for account in ACCOUNTS], private, public


def test_merged_pack_joins_every_account_and_verifies(packs, tmp_path: Path) -> None:
    inputs, private, public = packs
    out = tmp_path / "merged"
    assert main(["merge", *map(str, inputs), "--output", str(out), "--public-key", str(public), "--signing-key", str(private)]) == 0
    merged = json.loads((out / "findings.json").read_text())
    originals = [json.loads((p / "findings.json").read_text()) for p in inputs]
    assert len(merged["findings"]) == sum(len(o["findings"]) for o in originals)
    assert {f["account"] for f in merged["findings"]} == set(ACCOUNTS)
    for account, original in zip(ACCOUNTS, originals, strict=True):
        mine = sorted((f["control"], f["resource"], f["status"]) for f in merged["findings"] if f["account"] == account)
        assert mine == sorted((f["control"], f["resource"], f["status"]) for f in original["findings"])
    assert [a["id"] for a in merged["run"]["accounts"]] == list(ACCOUNTS)
    plan = json.loads((out / "retention-plan.json").read_text())
    assert {s["account"] for s in plan["stores"]} == set(ACCOUNTS)
    for account in ACCOUNTS:  # each pack whole, its own signature included, and still verifiable on its own
        assert (out / "accounts" / account / "manifest.sig").is_file()
        assert main(["verify", str(out / "accounts" / account), "--public-key", str(public)]) == 0
    assert main(["verify", str(out), "--public-key", str(public)]) == 0
    manifest = {f["path"] for f in json.loads((out / "manifest.json").read_text())["files"]}
    assert f"accounts/{ACCOUNTS[0]}/ledger.jsonl" in manifest and f"accounts/{ACCOUNTS[1]}/manifest.sig" in manifest


def test_a_pack_that_does_not_verify_stops_the_merge(packs, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inputs, private, public = packs
    (inputs[1] / "findings.json").write_text((inputs[1] / "findings.json").read_text().replace('"fail"', '"pass"'))
    out = tmp_path / "merged"
    assert main(["merge", *map(str, inputs), "--output", str(out), "--public-key", str(public), "--signing-key", str(private)]) == 1
    assert "did not verify, nothing was merged" in capsys.readouterr().err
    assert not out.exists()


def test_two_packs_of_one_account_are_refused(packs, tmp_path: Path) -> None:
    inputs, private, _public = packs
    twin = account_pack(tmp_path / "twin", ACCOUNTS[0], private)
    assert main(["merge", str(inputs[0]), str(twin), "--output", str(tmp_path / "merged")]) == 2


def test_the_report_shows_a_control_by_account_matrix_linking_to_each_accounts_failures(packs, tmp_path: Path) -> None:
    import re

    inputs, private, _public = packs
    out = tmp_path / "merged"
    assert main(["merge", *map(str, inputs), "--output", str(out), "--signing-key", str(private)]) == 0
    html = (out / "report.html").read_text()
    matrix = html[html.index('<section id="accounts">'):html.index('<section id="promises">')]
    for account in ACCOUNTS:
        assert f'href="#account-{account}"' in matrix and f'id="account-{account}"' in matrix
    failing = [f for f in json.loads((out / "findings.json").read_text())["findings"]
               if f["status"] == "fail" and f["account"] == ACCOUNTS[0] and "waived" not in f]
    assert failing
    section = re.search(rf'id="account-{ACCOUNTS[0]}".*?</section>', matrix, re.S).group(0)
    assert all(f["control"] in section for f in failing)
