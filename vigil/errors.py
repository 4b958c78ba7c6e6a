"""Errors that end a command with a specific exit code (cli.md), never a traceback."""


class VigilError(Exception):
    exit_code = 1


class UsageError(VigilError):
    """Bad input: usage, policy file, unknown control id. Exit 2; nothing was changed."""

    exit_code = 2


class EnvironmentFailure(VigilError):
    """No credentials, endpoint unreachable. Exit 3; nothing was changed."""

    exit_code = 3
