"""Run `python -m localcdn` as a separate process, as a user would: on a port the caller picks, stopped
with Ctrl-C. The end-to-end tests and the benchmarks drive the emulator through this."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None


class Emulator:
    def __init__(self, *args: str, home: Path | None = None, stack: str = "dev"):
        """`home`: a folder to use as HOME and TMPDIR (tests check that nothing lands there)."""
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        if home is not None:
            env.update(HOME=str(home), TMPDIR=str(home))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localcdn", "--stack", stack, "--port", str(self.port), "--quiet", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Drained as it comes: the functions log a JSON line per event, and a pipe nobody
        # reads fills up (64 KB) and stops the emulator at its next print.
        self._output: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                raise RuntimeError(f"localcdn exited: {self.output()}")
            try:
                health = self.get("/_localcdn/health")
                if health.status == 200:
                    self.s3_endpoint = str(health.json()["s3_endpoint"])
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("localcdn did not become ready in 60 s")

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        opener = urllib.request.build_opener(NoRedirect)
        try:
            with opener.open(request, timeout=60) as answer:
                return Reply(answer.status, dict(answer.headers), answer.read())
        except urllib.error.HTTPError as error:
            return Reply(error.code, dict(error.headers), error.read())

    def get(self, path: str, accept: str | None = None) -> Reply:
        return self.request("GET", path, headers={"Accept": accept} if accept else {})

    def primary(self, state: str) -> None:
        assert self.request("PUT", "/_localcdn/primary", state.encode()).status == 200

    def invalidate(self, *paths: str) -> int:
        body = json.dumps(list(paths)).encode() if paths else b""
        return int(self.request("POST", "/_localcdn/invalidate", body).json()["invalidated"])

    def _drain(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._output.append(line)

    def output(self) -> str:
        """What it has printed so far."""
        return "".join(self._output)

    def stop(self) -> str:
        """Ctrl-C, as a user would; returns what it printed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        return self.output()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
