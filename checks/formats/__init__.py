"""CI, GRC and security-tool formats written beside findings.json: SARIF, JUnit XML, OSCAL assessment
results, CSV, OCSF (Detection Finding, as Prowler emits) and ASFF (AWS Security Hub).

`write_oscal(findings, path)` (formats/oscal.py) is what `vigil report` calls for its pack.

Each writer reads the findings.json document (a dict), so `vigil check`, `vigil report` and
deploy-time checks produce the same files from the same data.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vigil.checks.formats.asff import to_asff
from vigil.checks.formats.csvfile import to_csv
from vigil.checks.formats.junit import to_junit
from vigil.checks.formats.ocsf import to_ocsf
from vigil.checks.formats.oscal import to_oscal
from vigil.checks.formats.sarif import sarif_from_findings

from vigil import safe_write

# --format NAME -> (file name beside findings.json, renderer of the findings.json dict to text)
FORMATS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "sarif": ("findings.sarif", lambda data: json.dumps(sarif_from_findings(data), indent=2) + "\n"),
    "junit": ("findings.junit.xml", to_junit),
    "oscal": ("findings.oscal.json", lambda data: json.dumps(to_oscal(data), indent=2) + "\n"),
    "csv": ("findings.csv", to_csv),
    "ocsf": ("findings.ocsf.json", lambda data: json.dumps(to_ocsf(data), indent=2) + "\n"),
    "asff": ("findings.asff.json", lambda data: json.dumps(to_asff(data), indent=2) + "\n"),
}


def write_formats(data: dict[str, Any], directory: Path, names: list[str]) -> dict[str, Path]:
    """Write each named format (once, however often it is named); format name -> file written."""
    written: dict[str, Path] = {}
    for name in dict.fromkeys(names):
        filename, render = FORMATS[name]
        path = directory / filename
        safe_write.write_text(path, render(data))
        written[name] = path
    return written
