"""The README's first commands, run as written against `make serve`'s emulator (the dev stack): every
header the README quotes under a curl is what that curl gets. A newcomer runs these first."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcdn.process import Emulator, Reply

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BASE = "http://127.0.0.1:8080"


def quickstart() -> list[tuple[str, list[str]]]:
    """(curl line, the README's `#   ...` lines under it) of the first block of curls."""
    block = re.search(r"```sh\n(curl -sD-.*?)```", README, re.S)
    assert block is not None, "the README's quick start is gone"
    steps: list[tuple[str, list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("curl "):
            steps.append((line, []))
        elif line.startswith("#   "):
            steps[-1][1].append(line[4:])
    return steps


def expected_headers(lines: list[str]) -> dict[str, str]:
    """`name: value` pairs of the README's lines (three or more spaces apart; `(...)` is prose)."""
    found = {}
    for line in lines:
        for part in re.split(r"\s{3,}", line.strip()):
            match = re.fullmatch(r"([a-z][a-z0-9-]*): (.+)", part.strip())
            if match:
                found[match.group(1)] = match.group(2).strip().rstrip(",")
    return found


def run(emulator: Emulator, line: str) -> Reply:
    words = shlex.split(line, comments=True)
    method, body, headers, url = "GET", None, {}, None
    index = 1
    while index < len(words):
        word = words[index]
        if word == "-X":
            method, index = words[index + 1], index + 2
        elif word == "--data":
            body, index = words[index + 1].encode(), index + 2
        elif word == "-H":
            name, _, value = words[index + 1].partition(": ")
            headers[name], index = value, index + 2
        elif word == "-o":
            index += 2
        elif word.startswith("-"):
            index += 1
        else:
            url, index = word, index + 1
    assert url is not None and url.startswith(BASE), line
    return emulator.request(method, url[len(BASE) :], body, headers)


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    started = Emulator(home=tmp_path_factory.mktemp("home"))  # make serve: the dev stack, its samples
    yield started
    started.stop()


def test_every_header_the_quick_start_quotes_is_what_its_curl_gets(emulator: Emulator) -> None:
    steps = quickstart()
    assert len(steps) >= 6
    checked = 0
    for line, lines in steps:
        reply = run(emulator, line)
        assert reply.status < 400, (line, reply.status, reply.body[:300])
        for name, value in expected_headers(lines).items():
            actual = reply.header(name)
            assert actual is not None, (line, name)
            if name == "server-timing":
                # the names and the cache's verdict are what the README shows; the durations are this run's
                shown = [metric.split(";dur=")[0] for metric in value.split(", ") if metric != "..."]
                got = [metric.split(";dur=")[0] for metric in actual.split(", ")]
                assert got[: len(shown)] == shown, (line, actual)
            else:
                assert actual.lower() == value.lower(), (line, name, actual)
            checked += 1
    assert checked >= 10
