"""`python -m ops <command>`: the operator commands; `python -m ops --help` lists them.

Every command exits 0 when it did what it was asked; 1 when a prerequisite is missing (AWS
credentials, access, a deployed stack, something listening at a URL) or what it checks failed
(a rejected upload, a failed build, a lost standard variant); 2 for a usage mistake (an unknown
command or option, a stack without its Pulumi.<stack>.yaml or with a bad config, a file that is
not there, a URL that cannot be signed); 130 when interrupted (Ctrl-C: 128 + SIGINT, what a
shell reports for a command it interrupted, so a script can tell it from a failure).

A mistake or a missing prerequisite is one or two lines on stderr (what is wrong, then what to
do), never a traceback: `explain` turns the known failure classes into those lines, here and
nowhere else. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import socket
import sys
import urllib.error
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ops import cli

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Command:
    module: str
    function: str
    summary: str
    # Why it needs AWS credentials, and how to run it against the emulator instead ("": it does not).
    aws: str = ""
    local: str = ""
    # What a Ctrl-C leaves behind.
    interrupted: str = ""


COMMANDS = {
    "sync": Command(
        "ops.sync",
        "main",
        "fill a stack's fallback bucket: the reconcile, here (--endpoint-url: the emulator's S3) or on AWS (--on-aws)",
        aws="it reads and writes the stack's buckets",
        local="--endpoint-url with the emulator's S3 (its s3_endpoint: curl http://127.0.0.1:8080/_localcdn/health)",
        interrupted="what was built is kept: run it again to finish",
    ),
    "drill": Command(
        "ops.drill",
        "main",
        "outage drill against the emulator (its own, or --url): primary up, down, error, up",
    ),
    "upload": Command(
        "ops.catalog",
        "upload_main",
        "upload every image below a folder to a stack's catalogue (--wait: until each is read)",
        aws="the catalogue's API takes IAM-signed requests",
        local="--api http://127.0.0.1:8080/api (make serve)",
        interrupted="the files sent so far stay uploaded",
    ),
    "images": Command(
        "ops.catalog",
        "images_main",
        "list a stack's catalogue (--tag, --after, --min-width, ...)",
        aws="the catalogue's API takes IAM-signed requests",
        local="--api http://127.0.0.1:8080/api (make serve)",
    ),
    "sign": Command(
        "ops.sign",
        "main",
        "sign an image URL with a stack's current key (--expires-in SECONDS)",
        aws="it reads the stack's signing secret",
        local="--emulator http://127.0.0.1:8080 (make serve)",
    ),
    "cost": Command(
        "ops.cost",
        "main",
        "estimate a stack's monthly bill from a traffic profile (no network)",
    ),
}

HELP = """usage: python -m ops COMMAND [options]     (python -m ops COMMAND --help: its options)

commands:
{commands}

exit status: 0 done; 1 a missing prerequisite (AWS credentials or access, a deployed stack,
something listening at a URL) or a failed check (a rejected upload, a failed build, a lost
standard variant); 2 a usage mistake (an unknown command or option, a stack without its
Pulumi.<stack>.yaml or with a bad config, a file that is not there, a URL that cannot be
signed); 130 interrupted (Ctrl-C). Mistakes and missing prerequisites are a line or two on
stderr; a traceback is a bug.
"""

# botocore's error codes, by what the user does about them.
EXPIRED = ("ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired")
DENIED = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError")
UNKNOWN_KEY = (
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidSignatureException",
    "AuthFailure",
)
# The options that name a URL, and what listens there.
URL_OPTIONS = ("--url", "--emulator", "--api", "--endpoint-url")


def usage() -> str:
    width = max(map(len, COMMANDS))
    return HELP.format(commands="\n".join(f"  {name:<{width}}  {c.summary}" for name, c in COMMANDS.items()))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(usage(), end="", file=sys.stderr)  # asked for nothing: a usage mistake, like any other
        return cli.USAGE
    if args[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        return cli.DONE
    name, rest = args[0], args[1:]
    command = COMMANDS.get(name)
    if command is None:
        choices = ", ".join(COMMANDS)
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        guess = f"did you mean {close[0]!r}? " if close else ""
        print(f"ops: unknown command {name!r}: {guess}one of {choices} (python -m ops --help)", file=sys.stderr)
        return cli.USAGE
    try:
        function = getattr(importlib.import_module(command.module), command.function)
        return int(function(rest))
    except KeyboardInterrupt:
        after = f": {command.interrupted}" if command.interrupted else ""
        fresh = "\n" if sys.stderr.isatty() else ""  # off the line a terminal's ^C or a progress bar is on
        print(f"{fresh}ops {name}: interrupted (Ctrl-C){after}", file=sys.stderr)
        return cli.INTERRUPTED
    except Exception as error:
        explained = explain(error, command, rest)
        if explained is None:
            raise
        status, message, hint = explained
        if isinstance(error, BrokenPipeError):
            # stdout went away (`| head`): nothing left to say, and nowhere to say it
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - kept open until the interpreter exits
            return status
        print(f"ops {name}: {message}", file=sys.stderr)
        if hint:
            print(f"  {hint}", file=sys.stderr)
        return status


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, then what it was explicitly raised from (`raise ... from cause`)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__


def explain(error: BaseException, command: Command, argv: list[str]) -> tuple[int, str, str | None] | None:
    """(exit status, what is wrong, what to do) for a failure the user can act on; None for a bug."""
    for cause in _causes(error):
        found = _explain(cause, command, argv)
        if found is not None:
            return found
    return None


# What only the full install has (requirements.txt and requirements-dev.txt): make serve's has not.
FULL_INSTALL = ("pulumi", "pulumi_aws", "pulumi_random")


def _explain(error: BaseException, command: Command, argv: list[str]) -> tuple[int, str, str | None] | None:
    if isinstance(error, ModuleNotFoundError) and error.name:
        package = error.name.split(".")[0]
        if package in FULL_INSTALL:
            return (
                cli.FAILED,
                f"this command needs the Pulumi SDK ({package}), which make serve does not install",
                "run make cost (or make test) once: it installs everything",
            )
        return (
            cli.FAILED,
            f"no module {package!r} in {sys.executable}",
            "use the project's Python: .venv/bin/python -m ops (make serve creates it)",
        )
    import botocore.exceptions as boto
    import requests

    from components.config import ConfigError

    if isinstance(error, cli.Failure):
        return error.status, error.message, error.hint
    if isinstance(error, ConfigError):
        return cli.USAGE, "invalid stack configuration: " + "; ".join(error.problems), None
    if isinstance(error, BrokenPipeError):
        return cli.FAILED, "", None

    # -- AWS: credentials, access, the stack's resources ---------------------------------------
    credentials = (
        boto.NoCredentialsError,
        boto.PartialCredentialsError,
        boto.CredentialRetrievalError,
        boto.ProfileNotFound,
        boto.SSOError,
        boto.TokenRetrievalError,
    )
    if isinstance(error, credentials):
        why = f" ({command.aws})" if command.aws else ""
        what = "no AWS credentials found" if isinstance(error, boto.NoCredentialsError) else str(error)
        return cli.FAILED, f"{what}{why}", _credentials_hint(command)
    if isinstance(error, boto.ClientError):
        details = error.response.get("Error", {})
        code, message, operation = details.get("Code", ""), details.get("Message", ""), error.operation_name
        if code in EXPIRED:
            return cli.FAILED, f"the AWS credentials have expired ({operation}: {code})", "refresh them and run again"
        if code in UNKNOWN_KEY:
            return (
                cli.FAILED,
                f"AWS does not accept these credentials ({operation}: {code})",
                "check AWS_PROFILE or AWS_ACCESS_KEY_ID (aws sts get-caller-identity says who you are)",
            )
        if code in DENIED:
            return (
                cli.FAILED,
                f"AWS refused {operation} ({code}){': ' + message if message else ''}",
                "use an identity allowed to do it (AWS_PROFILE), or ask for the permission",
            )
        endpoint = _option(argv, "--endpoint-url")
        if endpoint and code in ("404", "NotFound", "405", "MethodNotAllowed"):
            return (
                cli.USAGE,
                f"{endpoint} is not an S3 endpoint ({operation} answered {code} {message})".strip(),
                "the emulator's S3 is its s3_endpoint: curl http://127.0.0.1:8080/_localcdn/health",
            )
        if code == "NoSuchBucket":
            bucket = details.get("BucketName", "")
            return (
                cli.FAILED,
                f"no bucket {bucket} ({operation})".replace("  ", " "),
                "is the stack deployed (pulumi up), and is it the one you meant (--stack)?",
            )
        return None
    if isinstance(error, boto.ConnectionError | boto.HTTPClientError):  # EndpointConnectionError, timeouts, ...
        where = str(error.kwargs.get("endpoint_url") or error.kwargs.get("proxy_url") or "AWS").partition("?")[0]
        reason = _reason(error.kwargs.get("error") or error)
        return cli.FAILED, f"cannot reach {where}: {reason}", _reach_hint(where, argv)

    # -- a URL the command was given -------------------------------------------------------------
    if isinstance(error, urllib.error.HTTPError):
        return cli.FAILED, f"{error.url} answered {error.code} {error.reason}{_message_of(error)}", None
    unreachable: BaseException | None = None
    where = _given_url(argv)
    if isinstance(error, requests.exceptions.ConnectionError | requests.exceptions.Timeout):
        unreachable = error
        if error.request is not None and error.request.url:
            where = str(error.request.url).partition("?")[0]
    elif isinstance(error, urllib.error.URLError) and isinstance(error.reason, OSError):
        unreachable = error.reason
    elif isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        unreachable = error
    if unreachable is not None:
        return cli.FAILED, f"cannot reach {where}: {_reason(unreachable)}", _reach_hint(where, argv)

    # -- a file: a stack, or one the command was given ---------------------------------------------
    files = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)
    if isinstance(error, files) and error.filename is not None:
        path = Path(os.fsdecode(error.filename))
        stack = re.fullmatch(r"Pulumi\.(.+)\.yaml", path.name)
        if stack is not None and path.parent == ROOT and isinstance(error, FileNotFoundError):
            stacks = ", ".join(sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in ROOT.glob("Pulumi.*.yaml")))
            name = stack.group(1)
            return cli.USAGE, f"no stack {name}: there is no Pulumi.{name}.yaml", f"the stacks here: {stacks}"
        given = _given(path, argv)
        if given is not None:
            return cli.USAGE, f"{given}: {error.strerror}", None
        return cli.FAILED, f"{path}: {error.strerror}", None
    return None


def _credentials_hint(command: Command) -> str:
    hint = "set AWS_PROFILE (aws configure sso; aws sso login) or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    return hint + (f"; or use the emulator: {command.local}" if command.local else "")


def _option(argv: list[str], *names: str) -> str:
    """The value of the first of `names` given (`--opt value` or `--opt=value`), or ""."""
    for index, arg in enumerate(argv):
        option, equals, value = arg.partition("=")
        if option in names:
            found = value if equals else (argv[index + 1] if index + 1 < len(argv) else "")
            if found:
                return found
    return ""


def _given_url(argv: list[str]) -> str:
    """The URL the command was given (the first option that names one), or what stands for it."""
    return _option(argv, *URL_OPTIONS) or "the URL given"


def _reach_hint(where: str, argv: list[str]) -> str:
    for index, arg in enumerate(argv):
        option, equals, value = arg.partition("=")
        given = value if equals else (argv[index + 1] if index + 1 < len(argv) else "")
        if option in URL_OPTIONS and given and where.startswith(given.rstrip("/")):
            return f"is it running (make serve starts the emulator)? or check {option}"
    return "check the network (and HTTPS_PROXY, if you need one)"


def _given(path: Path, argv: list[str]) -> str | None:
    """How the command line named `path` (`--traffic missing.yaml`), if it did."""
    wanted = os.path.abspath(path)
    for index, arg in enumerate(argv):
        option, equals, value = arg.partition("=")
        if equals and option.startswith("--") and os.path.abspath(value) == wanted:
            return f"{option} {value}"
        if os.path.abspath(arg) == wanted:
            before = argv[index - 1] if index and argv[index - 1].startswith("--") else ""
            return f"{before} {arg}".strip()
    return None


def _reason(error: BaseException) -> str:
    """What went wrong reaching a URL, in a few words."""
    text = str(error)
    if isinstance(error, ConnectionRefusedError) or "Connection refused" in text or "[Errno 111]" in text:
        return "connection refused"
    if isinstance(error, TimeoutError) or "timed out" in text.lower():
        return "no answer in time"
    if isinstance(error, socket.gaierror) or "Name or service not known" in text or "nodename nor servname" in text:
        return "no such host"
    if isinstance(error, ConnectionResetError) or "closed" in text.lower() or "reset" in text.lower():
        return "the connection closed without an answer"
    return text.splitlines()[0] if text else type(error).__name__


def _message_of(error: BaseException) -> str:
    """The `message` of a JSON error body (the project's shape), or nothing."""
    import json

    try:
        body = json.loads(error.read())  # type: ignore[attr-defined]
    except Exception:
        return ""
    return f": {body['message']}" if isinstance(body, dict) and isinstance(body.get("message"), str) else ""


if __name__ == "__main__":
    sys.exit(main())
