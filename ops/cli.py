"""What every operator command shares: its argument parser, the checks on what it is given, and
the failures it reports in a line or two.

A command raises `Usage` for a mistake in what it was given (exit 2) and `Unavailable` for a
prerequisite that is missing (exit 1); `python -m ops` (ops/__main__.py) prints either, as it
prints the library errors that mean the same (no AWS credentials, nothing listening at a URL),
and lets anything else through with its traceback: that is a bug.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn
from urllib.parse import urlsplit

DONE = 0
FAILED = 1  # a missing prerequisite, or what the command checks failed
USAGE = 2  # a mistake in the command line or in what it names
INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports a command it interrupted


class Failure(Exception):
    """A failure the user can act on: `message` says what is wrong, `hint` (optional) what to do."""

    status = FAILED

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


class Usage(Failure):
    """A mistake in what the command was given: exit 2."""

    status = USAGE


class Unavailable(Failure):
    """A prerequisite that is not there (a deployment, a service, a file): exit 1."""

    status = FAILED


EXIT_STATUS = (
    "exit status: 0 done; 1 a missing prerequisite or a failed check; 2 a usage mistake; "
    "130 interrupted (python -m ops --help says more)"
)


class Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line (argparse prints the whole usage first), and
    the exit statuses under every command's --help."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("epilog", EXIT_STATUS)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise Usage(message, f"{self.prog} --help lists its options")


def url(text: str) -> str:
    """An argparse type: an http or https URL with a host (`http://127.0.0.1:8080`)."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        expected = "an http:// or https:// URL such as http://127.0.0.1:8080"
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number after the host, got {text!r}") from None
    return text.rstrip("/")


def positive_int(text: str) -> int:
    """An argparse type: a whole number from 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a number above 0 (seconds)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value
