"""The streaming search `find` uses: any chunking, gzip members, ids across chunk boundaries."""
from __future__ import annotations

import gzip

from hypothesis import given, settings
from hypothesis import strategies as st

from vigil.subjects.stream import mentions


def _chunks(body: bytes, size: int):
    for start in range(0, len(body), size):
        yield body[start:start + size]


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(st.text("abc0123-", max_size=30), max_size=300), insert=st.booleans(), gz=st.booleans(),
       members=st.integers(1, 3), size=st.sampled_from([1, 7, 100, 4096, 65536]))
def test_mentions_agrees_with_a_whole_read(lines: list[str], insert: bool, gz: bool, members: int, size: int) -> None:
    needle = b"acct-42xyz"
    text = "\n".join(lines).encode()
    if insert:
        text = text[: len(text) // 2] + needle + text[len(text) // 2:]
    parts = [text[i * len(text) // members:(i + 1) * len(text) // members] for i in range(members)]
    body = b"".join(gzip.compress(p, mtime=0) for p in parts) if gz else text
    kept: list[bytes] = []
    assert mentions(_chunks(body, size), gz, needle, kept) == (needle in text)
    if gz and needle in text:
        assert gzip.decompress(b"".join(kept)) == text, "a match keeps the whole compressed object"
    if not gz:
        assert kept == [], "plain objects are not kept while streaming"


def test_missing_key_is_bad_input(tmp_path, monkeypatch, capsys) -> None:
    from tests.test_subject_world import SubjectWorld

    world = SubjectWorld(tmp_path, monkeypatch)
    monkeypatch.delenv("VIGIL_PSEUDONYM_KEY")
    assert world.subject("find", "alice") == 2
    assert "VIGIL_PSEUDONYM_KEY is not set" in capsys.readouterr().err
    assert world.subject("erase", " ") == 2
