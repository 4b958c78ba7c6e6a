"""Does an object mention the subject? Answered while streaming, in small pieces.

The body is read and (for .gz) decompressed 64 KiB at a time, so memory does not grow with
object size and large buffers never pile up in the allocator; only an object that mentions
the subject is then read whole (its compressed bytes are kept for that; a plain object is
fetched again, which is rare: most objects do not mention a given subject).
"""
from __future__ import annotations

import ctypes
import zlib
from collections.abc import Iterable

CHUNK = 64 * 1024


def _inflate(chunks: Iterable[bytes]) -> Iterable[bytes]:
    """Decompressed pieces of at most CHUNK bytes; concatenated gzip members are followed."""
    inflater = zlib.decompressobj(wbits=47)  # 32 + 15: gzip or zlib header, detected
    for chunk in chunks:
        data = chunk
        while data:
            yield inflater.decompress(data, CHUNK)
            data = inflater.unconsumed_tail
            if inflater.eof:
                data = inflater.unused_data + data
                inflater = zlib.decompressobj(wbits=47)
                if not data:
                    break


def mentions(chunks: Iterable[bytes], gz: bool, needle: bytes, keep: list[bytes]) -> bool:
    """True when `needle` occurs in the (decompressed) content. The raw chunks of a .gz object are
    appended to `keep` as they stream (to decompress it whole on a match); plain ones are not."""
    def raw() -> Iterable[bytes]:
        for chunk in chunks:
            if gz:
                keep.append(chunk)
            yield chunk

    stream = raw()
    pieces = _inflate(stream) if gz else stream
    overlap = len(needle) - 1
    tail = b""
    for piece in pieces:
        window = tail + piece
        if needle in window:
            for _rest in stream:  # the compressed remainder, kept for the whole read
                pass
            return True
        tail = window[-overlap:] if overlap else b""
    return False


def limit_malloc_arenas(arenas: int = 2) -> None:
    """glibc gives reader threads heap arenas of their own and seldom returns their freed memory,
    so RSS grows with the bytes read while the live heap stays flat; fewer arenas keep it flat.
    A no-op where the C library is not glibc."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass
