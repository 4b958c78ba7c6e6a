"""Every file Vigil writes goes through here: never through a symbolic link, never half-written.

An output folder is shared with other tools and people; a link planted there
(`findings.json -> ~/.ssh/authorized_keys`) must not turn a report into a write elsewhere.
So a name that is a link is refused (exit 2) rather than followed or silently replaced;
whole files are written to a temporary file in the same folder and renamed into place
(a crash leaves the old file or the new one, never a torn one); streams (ledger, action
logs) are opened with O_NOFOLLOW. The output folder itself may be a link (a mounted
volume): only the entries Vigil creates in it are guarded.

Errors: a link or a non-folder is UsageError (exit 2); a read-only folder, a full disk and
other OS failures are EnvironmentFailure (exit 3). Both name the path.
"""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from vigil.errors import EnvironmentFailure, UsageError

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
BAD_INPUT = {errno.ENOTDIR, errno.EISDIR, errno.ELOOP, errno.ENAMETOOLONG, errno.EEXIST, errno.ENOENT}


def failure(exc: OSError, path: str | os.PathLike[str] | None = None, doing: str = "write") -> UsageError | EnvironmentFailure:
    """The error a user sees for an OSError: bad input for a wrong kind of path, else the environment."""
    where = os.fspath(path) if path is not None else (exc.filename or "")
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ELOOP:
        return UsageError(f"{where}: is a symbolic link; Vigil never writes through links (remove it)")
    if exc.errno in BAD_INPUT:
        return UsageError(f"{where}: cannot {doing} ({reason})")
    hint = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted", errno.EROFS: "read-only file system",
            errno.EACCES: "permission denied", errno.EPERM: "not permitted", errno.EFBIG: "the file size limit was reached"}
    return EnvironmentFailure(f"{where}: cannot {doing} ({hint.get(exc.errno or 0, reason)}); free space or fix permissions and run again")


def refuse_link(path: Path) -> None:
    if path.is_symlink():
        raise UsageError(f"{path}: is a symbolic link; Vigil never writes through links (remove it)")


def ensure_dir(path: str | os.PathLike[str], flag: str | None = None) -> Path:
    """Create the folder (and its parents) or check it is one. `flag` (e.g. "--output") names where it came from."""
    path = Path(path)
    label = f"{flag} {path}" if flag else str(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{label}: is a file, not a folder")
    if flag is None:
        refuse_link(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{label}: a file is in the way of the folder") from None
    except OSError as exc:
        raise failure(exc, path, "create the folder") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise EnvironmentFailure(f"{label}: the folder is not writable (permission denied)")
    return path


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> Path:
    """Replace `path` with `data` atomically (temporary file + rename); refuse when `path` is a link."""
    path = Path(path)
    refuse_link(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # O_EXCL: never a link
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
        refuse_link(path)  # a link that appeared meanwhile would be replaced, not followed; still, say so
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise failure(exc, path) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def write_text(path: str | os.PathLike[str], text: str, mode: int = 0o644) -> Path:
    return write_bytes(path, text.encode("utf-8"), mode)


def open_stream(path: str | os.PathLike[str], mode: str = "w", perms: int = 0o644, **kwargs: Any) -> IO[Any]:
    """Open for writing ("w", "wb") or appending ("a", "ab", "a+") without following a link at `path`."""
    access = os.O_RDWR if "+" in mode else os.O_WRONLY
    flags = access | os.O_CREAT | NOFOLLOW | (os.O_APPEND if mode.startswith("a") else os.O_TRUNC)
    try:
        fd = os.open(path, flags, perms)
    except OSError as exc:
        raise failure(exc, path, "open for writing") from None
    return os.fdopen(fd, mode, **kwargs)
