"""Render the evidence pack: report.html, report.md, summary.json, then the signed manifest.

Two Jinja environments, both strict (an undefined name is an error, never an empty string):
HTML with autoescape on, Markdown with every printed value escaped by `finalize`. Every value
from AWS is untrusted text and reaches the page only through those escapes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from vigil import __version__, safe_write
from vigil.errors import UsageError

from . import context as ctx
from . import manifest
from .keys import ENV_VAR, KMS_PREFIX, Signer, fingerprint, load_signer
from .policy_copy import COPY_NAME, policy_copy
from .results import load_results

REPORT_HTML = "report.html"
REPORT_MD = "report.md"
SUMMARY = "summary.json"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


def human_bytes(value: int | float) -> str:
    number = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(number) < 1024 or unit == "TiB":
            return f"{int(number)} {unit}" if unit == "B" else f"{number:.1f} {unit}"
        number /= 1024
    return f"{number:.1f} TiB"


def status_label(status: str) -> str:
    return status.replace("_", " ")


@dataclass(frozen=True)
class Raw:
    """Markdown that the template built itself (a code fence): printed as it is."""

    text: str


def md_escape(value: Any) -> str:
    """Escape text for Markdown: special characters backslashed, HTML impossible, one line."""
    if isinstance(value, Raw):
        return value.text
    if value is None:
        return ""
    text = str(value).replace("\r", " ").replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_code(value: Any, language: str = "json") -> Raw:
    """A fenced code block longer than any backtick run inside, so the content cannot close it."""
    text = str(value)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return Raw(f"{fence}{language}\n{text}\n{fence}")


def _common(env: Environment) -> Environment:
    env.filters["bytes"] = human_bytes
    env.filters["label"] = status_label
    return env


_BREAK_AFTER = re.compile(r"([:/])")


def breakable(value: Any) -> Markup:
    """Escaped text with a line-break opportunity after each ':' and '/': an ARN wraps at its own seams, never mid-word."""
    return Markup(_BREAK_AFTER.sub(r"\1<wbr>", str(escape(value))))


@cache  # one environment per process: templates are compiled once
def html_environment() -> Environment:
    env = Environment(loader=PackageLoader("vigil.evidence", "templates"), autoescape=select_autoescape(["html", "j2"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["breakable"] = breakable
    return _common(env)


@cache
def md_environment() -> Environment:
    env = Environment(loader=PackageLoader("vigil.evidence", "templates"), autoescape=False, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, finalize=md_escape)
    env.filters["code"] = md_code
    return _common(env)


def signing_info(signer: Signer | None) -> dict[str, Any]:
    if signer is None:
        return {"signed": False, "fingerprint": "", "signer": ""}
    return {"signed": True, "fingerprint": fingerprint(signer.public_key_raw()), "signer": signer.description}


def render(directory: Path, policy_path: str | Path | None, signer: Signer | None,
           hash_subject: Callable[[str], str] | None = None) -> dict[str, Any]:
    """The context, the three rendered documents and the policy copy (None: no copy), in memory."""
    results = load_results(directory, policy_path)
    copy = policy_copy(results.policy, hash_subject)
    context = ctx.build(results, signing_info(signer))
    context["policy"]["copy_note"] = copy.note
    context["css"] = Markup(_asset("report.css"))
    context["js"] = Markup(_asset("report.js"))
    # The page's Content-Security-Policy allows this one script, by hash, and nothing else.
    context["script_hash"] = base64.b64encode(hashlib.sha256(context["js"].encode()).digest()).decode()
    return {
        REPORT_HTML: html_environment().get_template("report.html.j2").render(context),
        REPORT_MD: md_environment().get_template("report.md.j2").render(context),
        SUMMARY: json.dumps(ctx.summary_json(context), indent=2, sort_keys=True) + "\n",
        COPY_NAME: copy.text,
        "context": context,
    }


def _asset(name: str) -> str:
    return (Path(__file__).parent / "templates" / name).read_text(encoding="utf-8")


def refuse_key_inside(directory: Path, signing_key: object) -> None:
    """The manifest covers every file in the folder: a private key there would be published with the evidence."""
    if signing_key is None:
        spec = os.environ.get(ENV_VAR, "")
    elif isinstance(signing_key, (str, os.PathLike)):
        spec = os.fspath(signing_key)
    else:
        return  # a signer object: no file to publish
    if spec and not spec.startswith(KMS_PREFIX) and Path(spec).resolve().is_relative_to(Path(directory).resolve()):
        raise UsageError(f"signing key {spec} is inside the pack {directory}; keep it elsewhere")


def write_html(directory: str | Path, policy_path: str | Path | None = None) -> Path:
    """report.html alone, unsigned (`vigil check --format html`): the same page `vigil report` writes into a pack."""
    directory = Path(directory)
    path = directory / REPORT_HTML
    return safe_write.write_text(path, render(directory, policy_path, None)[REPORT_HTML])


def write_report(directory: str | Path, policy_path: str | Path | None = None,
                 signing_key: Signer | str | os.PathLike[str] | None = None,
                 hash_subject: Callable[[str], str] | None = None) -> list[Path]:
    """Write report.html, report.md, summary.json, the policy copy and manifest.json (+ manifest.sig when signed).

    `hash_subject` is the keyed hash for legal-hold subject ids in the policy copy (the
    ledger's); without it those ids are withheld from the copy.

    `signing_key` is a signer, a key file (or `kms:<key>`); None falls back to $VIGIL_SIGNING_KEY,
    and without that the pack is written unsigned and says so on its first page.
    """
    directory = Path(directory)
    refuse_key_inside(directory, signing_key)
    manifest.pack_files(directory)  # a link in the pack is refused before anything is written
    signer = load_signer(signing_key) if signing_key is None or isinstance(signing_key, (str, os.PathLike)) else signing_key
    rendered = render(directory, policy_path, signer, hash_subject)
    written = []
    for name in (REPORT_HTML, REPORT_MD, SUMMARY, COPY_NAME):
        path = directory / name
        if rendered[name] is None:
            path.unlink(missing_ok=True)  # a copy from an earlier report may be of another policy
            continue
        written.append(safe_write.write_text(path, rendered[name]))
    run = rendered["context"]["run"]
    written += manifest.write(directory, run.get("id", ""), __version__, run.get("policy_sha256", ""), signer)
    return written
