"""Exit codes (cli.md) and the errors that end a command with one, never a traceback."""
from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Every exit code Vigil uses; a job's is its worst stage's (OK < FAILED < USAGE < ENVIRONMENT)."""

    OK = 0
    FAILED = 1  # a control failed, a problem was found, or an unexpected error
    USAGE = 2  # bad input: nothing was changed
    ENVIRONMENT = 3  # no credentials, endpoint unreachable: nothing was changed
    INTERRUPTED = 130  # stopped by a signal (the conventional 128 + SIGINT)


class VigilError(Exception):
    exit_code = ExitCode.FAILED


class UsageError(VigilError):
    """Bad input: usage, policy file, unknown control id. Exit 2; nothing was changed."""

    exit_code = ExitCode.USAGE


class EnvironmentFailure(VigilError):
    """No credentials, endpoint unreachable. Exit 3; nothing was changed."""

    exit_code = ExitCode.ENVIRONMENT
