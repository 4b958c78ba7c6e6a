"""`vigil subject export`: one JSON file per store with the subject's data alone, and a README."""
from __future__ import annotations

import json
from pathlib import Path

from moto import mock_aws

from tests.test_subject_world import SubjectWorld


def test_export_package_holds_the_subject_and_nobody_else(tmp_path: Path, monkeypatch, capsys) -> None:
    with mock_aws():
        world = SubjectWorld(tmp_path, monkeypatch)
        world.build(others=200)
        before = world.estate()
        out = tmp_path / "package"
        assert world.subject("export", "alice", out=out) == 0
        assert world.estate() == before, "export reads only"
        files = sorted(p.name for p in out.iterdir())
        assert files == ["README.md", "billing.json", "call-records.json", "consent.json", "contacts.json", "referrals.json",
                         "subscribers.json", "web-logs.json"]
        text = "".join(p.read_text() for p in out.iterdir())
        assert "bob" not in text and "carol" not in text and "user-0" not in text, "nothing of anyone else"
        logs = json.loads((out / "web-logs.json").read_text())
        assert logs["schema"] == "vigil.subject-export/v1" and logs["category"] == "usage_logs"
        assert sorted(r["path"] for r in logs["records"]) == ["/p/1", "/p/9999"]  # current versions of the source bucket only
        assert logs["copies"] == {"current": 2, "older_versions": 1, "replicas": 3}
        assert json.loads((out / "contacts.json").read_text())["records"] == [{"name": "alice", "v": 2}]
        calls = json.loads((out / "call-records.json").read_text())["records"]
        assert [r["caller"] for r in calls] == ["alice", "alice"]
        assert json.loads((out / "referrals.json").read_text())["records"][0]["referrer"] == "alice"
        readme = (out / "README.md").read_text()
        assert "Example Telecom" in readme and "Consent tracking and proof of consent" in readme
        assert "| web\\-logs.json |" in readme or "| web-logs.json |" in readme
        assert world.subject("export", "alice") == 2, "--output is required"
        assert world.subject("export", "nobody", out=tmp_path / "none") == 1
