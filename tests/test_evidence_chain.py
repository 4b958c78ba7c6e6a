"""The ledger hash chain, the SVG charts and the Markdown report, each on its own."""
from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from pathlib import Path

from vigil.evidence import chain, charts, sample
from vigil.evidence.render import md_code, md_escape, write_report


def entries(n: int) -> list[dict]:
    return [{"ts": f"2026-11-01T00:00:0{i}Z", "run_id": "r1", "phase": "intent" if i % 2 == 0 else "outcome",
             "action_id": f"a{i // 2}", "action": "delete", "store": "contacts", "target": f"hmac:{i}",
             "outcome": None if i % 2 == 0 else "done", "detail": None} for i in range(n)]


def test_an_intact_chain_holds_and_its_head_is_the_last_lines_hash() -> None:
    data = sample.ledger_bytes(entries(6))
    result = chain.check_chain(data)
    assert result.ok and result.lines == 6
    assert result.head == hashlib.sha256(data.splitlines()[-1]).hexdigest()
    first = json.loads(data.splitlines()[0])
    assert first["seq"] == 0 and first["prev"] == "0" * 64


def test_an_empty_ledger_is_an_empty_chain() -> None:
    assert chain.check_chain(b"").ok and chain.check_chain(b"").lines == 0


def test_an_edited_line_breaks_the_link_after_it() -> None:
    lines = sample.ledger_bytes(entries(5)).splitlines()
    lines[1] = lines[1].replace(b'"done"', b'"fail"')
    result = chain.check_chain(b"\n".join(lines) + b"\n")
    assert result.failures == ["ledger.jsonl line 3: prev does not match the SHA-256 of the line before: the chain is broken "
                               "here, so lines 3-5 (3 lines) are no longer tied to the start of the ledger"]


def test_a_removed_line_is_detected() -> None:
    lines = sample.ledger_bytes(entries(5)).splitlines()
    del lines[2]
    result = chain.check_chain(b"\n".join(lines))
    assert len(result.failures) == 1  # one gap, one failure (not one per line after it)
    assert result.failures[0].startswith("ledger.jsonl line 3: seq is 3, expected 2")
    assert "prev does not match" in result.failures[0] and "lines 3-4 (2 lines)" in result.failures[0]


def test_a_removed_last_line_changes_the_head() -> None:
    data = sample.ledger_bytes(entries(4))
    shorter = b"\n".join(data.splitlines()[:-1]) + b"\n"
    assert chain.check_chain(shorter).ok  # a truncated chain is internally consistent ...
    assert chain.check_chain(shorter).head != chain.check_chain(data).head  # ... so the signed manifest carries its digest and head


def test_garbage_and_non_objects_are_reported_by_line() -> None:
    data = sample.ledger_bytes(entries(2)) + b"{not json\n[1, 2]\n"
    result = chain.check_chain(data)
    assert [f.split(":")[:2] for f in result.failures] == [["ledger.jsonl line 3", " not valid JSON"],
                                                           ["ledger.jsonl line 4", " not a JSON object"]]


def test_bar_chart_escapes_labels_and_draws_one_rect_per_nonzero_status() -> None:
    svg = charts.bar_chart([charts.Bar("<b>x</b>", {"pass": 2, "fail": 1}), charts.Bar("Y", {"error": 3})], "c", "t")
    assert "<b>" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg
    assert svg.count('class="bar bar-') == 3


def test_line_chart_leaves_a_gap_where_nothing_was_evaluated() -> None:
    points = [charts.Point("a", 0.5), charts.Point("b", 0.6), charts.Point("c", None), charts.Point("d", 0.9), charts.Point("e", 1.0)]
    svg = str(charts.line_chart(points, "t", "trend"))
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 4
    tags: list[str] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list) -> None:
            tags.append(tag)

    Tags().feed(svg)
    assert tags[:2] == ["svg", "title"] and tags.count("circle") == 4


def test_markdown_escaping_keeps_text_literal() -> None:
    assert md_escape("a|b <script> *x* [l](u)\nnext") == "a\\|b \\<script\\> \\*x\\* \\[l\\]\\(u\\) next"
    assert md_escape(None) == ""
    fenced = md_code("x ``` y ````").text
    assert fenced.startswith("`````json\n") and fenced.endswith("\n`````")


def test_markdown_report_has_every_control_and_the_failures_observations(tmp_path: Path) -> None:
    directory = sample.write_sample(tmp_path / "run")
    write_report(directory)
    md = (directory / "report.md").read_text()
    findings = json.loads((directory / "findings.json").read_text())
    for control in findings["controls"]:
        assert f"### {control['id']}" in md
    failing = [f for f in findings["findings"] if f["status"] == "fail"]
    assert md.count("Observed for ") == len([f for f in findings["findings"] if f["status"] in ("fail", "error")])
    assert md_escape(failing[0]["reason"]) in md
    assert "UNSIGNED" in md.split("## Summary")[0]
