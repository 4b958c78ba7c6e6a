"""The report in a real headless Chromium: the script runs (under the page's CSP), no console errors,
the charts render, and a screenshot is taken. Set VIGIL_UPDATE_SCREENSHOT=1 to refresh docs/report.png."""
from __future__ import annotations

import json
import os
import re
import struct
from pathlib import Path

import pytest
from vigil.evidence import screenshot

from tests.conftest import ROOT

BROWSER = screenshot.find_browser()
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(BROWSER is None, reason="Chromium is not installed (run 'make browser' to install it)"),
]


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshot.sample_pack(tmp_path_factory.mktemp("packs"))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_report_renders_in_chromium_with_its_script_and_no_console_errors(pack: Path) -> None:
    assert BROWSER is not None
    loaded = screenshot.load(pack / "report.html", BROWSER)
    assert loaded.console == []  # no script error, no CSP violation, nothing logged
    assert 'data-js="ready"' in loaded.dom  # the inline script ran under the page's CSP hash
    assert re.search(r'<form id="filters"(?![^>]*hidden)', loaded.dom)  # JS revealed the filters
    assert re.search(r'<output id="filter-count">\d+ finding\(s\) shown</output>', loaded.dom)
    assert '<svg id="summary-chart"' in loaded.dom and '<svg id="trend-chart"' in loaded.dom
    assert loaded.dom.count("<polyline") == 1  # the trend line over the four runs


def test_filters_hide_what_was_not_asked_for(pack: Path) -> None:
    assert BROWSER is not None
    findings = json.loads((pack / "findings.json").read_text())["findings"]
    control = next(f["control"] for f in findings if f["status"] == "fail")
    loaded = screenshot.load(pack / "report.html", BROWSER, query=f"?status=fail&control={control}")
    assert loaded.console == []
    rows = re.findall(r'<tr class="finding( hidden-by-filter)?" data-status="(\w+)" data-control="([A-Z]+-\d+)"', loaded.dom)
    assert len(rows) == len(findings)
    shown = [(status, cid) for hidden, status, cid in rows if not hidden]
    expected = [(f["status"], f["control"]) for f in findings if f["status"] == "fail" and f["control"] == control]
    assert shown and sorted(shown) == sorted(expected)
    sections = re.findall(r'<section class="control (\w+)( hidden-by-filter)?" id="control-([A-Z]+-\d+)"', loaded.dom)
    assert [cid for _, hidden, cid in sections if not hidden] == [control]


def test_screenshot_is_a_real_picture(pack: Path, tmp_path: Path) -> None:
    assert BROWSER is not None
    target = ROOT / "docs" / "report.png" if os.environ.get("VIGIL_UPDATE_SCREENSHOT") else tmp_path / "report.png"
    png = screenshot.screenshot(pack / "report.html", target, BROWSER)
    assert png_size(png) == (1280, 1800)
    assert png.stat().st_size > 50_000  # a blank page of this size compresses to a few kilobytes
