"""Outage drill: steady traffic while the primary goes down, then errors, then comes back.

    python -m ops drill --stack dev            # starts its own emulator
    python -m ops drill --origin thumbor       # ... with thumbor as a third-party primary (killed when down)
    python -m ops drill --url http://127.0.0.1:8080

Four equal phases (up, down, error, up); at each change the primary's state is set
and the cache is emptied, and again every few seconds within a phase, as if cached
copies expired (a warm cache would hide the outage). Requests never straddle a phase
change: the drill lets the ones in flight finish before it changes anything. Clients
request every standard variant of every original and a mix of non-standard ones
(other widths, AVIF, quality 90, crops). The report counts, per phase, what was
served, what failed and from which origin. Goal: no failed request for a standard
variant. Exit status 1 if one failed. However it ends (finished, failed, Ctrl-C), the
emulator is left with its primary up; one the drill started is stopped.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from typing import Any

from components.config import from_stack_file
from localcdn.process import Emulator
from ops import cli

CHROMIUM = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
PHASES = ("up", "down", "error", "up")


def _call(base: str, method: str, path: str, body: bytes | None = None, timeout: float = 120) -> Any:
    request = urllib.request.Request(base + path, data=body, method=method)
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


def traffic(keys: list[str], widths: tuple[int, ...]) -> list[tuple[str, str, str]]:
    """(kind, path, accept) for every standard variant and a set of non-standard ones."""
    requests = []
    for key in keys:
        for width in widths:
            requests.append(("standard", f"/{key}?w={width}&fm=webp", CHROMIUM))
        for query in ("w=300", "w=700&q=90", "w=1100&h=500", "w=50&fm=jpeg&q=45"):
            requests.append(("non-standard", f"/{key}?{query}", CHROMIUM))
    return requests


class Gate:
    """Many requests at a time, or one change with no request in flight."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._inside = 0
        self._closed = False

    def enter(self) -> None:
        with self._condition:
            self._condition.wait_for(lambda: not self._closed)
            self._inside += 1

    def leave(self) -> None:
        with self._condition:
            self._inside -= 1
            self._condition.notify_all()

    def change(self, action: Any) -> None:
        with self._condition:
            self._closed = True
            self._condition.wait_for(lambda: self._inside == 0)
            try:
                action()
            finally:
                self._closed = False
                self._condition.notify_all()


def run(
    base: str, widths: tuple[int, ...], seconds: float, clients: int, expire_every: float, *, progress: bool = False
) -> dict[str, Any]:
    """The drill against the emulator at `base`. `progress`: a bar on stderr (tqdm; only on a terminal)
    with the phase, the seconds gone, and the requests served and failed so far."""
    from tqdm import tqdm

    bar = tqdm(
        total=round(seconds), unit="s", desc="drill: syncing", file=sys.stderr, disable=None if progress else True
    )
    summary = _call(base, "POST", "/_localcdn/sync")
    keys = sorted(_call(base, "GET", "/_localcdn/variants"))
    plan = traffic(keys, widths)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    gate = Gate()
    phase = [""]
    stop = threading.Event()
    counter = itertools.count()

    def client() -> None:
        while not stop.is_set():
            kind, path, accept = plan[next(counter) % len(plan)]
            gate.enter()
            current = phase[0]
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(
                    urllib.request.Request(base + path, headers={"Accept": accept}), timeout=60
                ) as answer:
                    answer.read()
                    status, origin, cache = answer.status, answer.headers.get("X-Origin"), answer.headers.get("X-Cache")
            except urllib.error.HTTPError as error:
                status, origin, cache = error.code, error.headers.get("X-Origin"), error.headers.get("X-Cache")
            except OSError:
                status, origin, cache = 0, None, None
            finally:
                gate.leave()
            with lock:
                results.append(
                    {
                        "phase": current,
                        "kind": kind,
                        "status": status,
                        "origin": origin,
                        "cache": cache,
                        "ms": (time.perf_counter() - started) * 1000,
                    }
                )

    def switch(label: str, state: str) -> None:
        _call(base, "PUT", "/_localcdn/primary", state.encode())
        _call(base, "DELETE", "/_localcdn/cache")
        phase[0] = label

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    try:
        gate.change(lambda: switch("1:up", "up"))
        for thread in threads:
            thread.start()
        for index, state in enumerate(PHASES):
            if index:
                gate.change(lambda index=index, state=state: switch(f"{index + 1}:{state}", state))
            bar.set_description(f"drill: primary {state}")
            began = time.monotonic()
            ends = began + seconds / len(PHASES)
            while time.monotonic() < ends:
                time.sleep(min(expire_every, max(0.0, ends - time.monotonic())))
                if time.monotonic() < ends:
                    gate.change(lambda: _call(base, "DELETE", "/_localcdn/cache"))
                with lock:
                    failed = sum(1 for result in results if result["status"] != 200)
                    bar.set_postfix(served=len(results) - failed, failed=failed, refresh=False)
                done = round(index * seconds / len(PHASES) + time.monotonic() - began)
                bar.update(max(0, min(done, bar.total) - bar.n))
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        # Finished, failed or interrupted: the emulator is left with its primary up.
        stop.set()
        bar.close()
        try:
            _call(base, "PUT", "/_localcdn/primary", b"up", timeout=10)
        except OSError as error:
            print(f"drill: could not set the primary back up at {base}: {error}", file=sys.stderr)
    return {"synced": summary, "originals": len(keys), "report": report(results)}


def report(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for result in results:
        groups[(result["phase"], result["kind"])].append(result)
    rows = []
    for (phase, kind), items in sorted(groups.items()):
        served_by: dict[str, int] = defaultdict(int)
        for item in items:
            if item["status"] == 200:
                served_by["cache" if item["cache"] == "Hit" else (item["origin"] or "?")] += 1
        times = sorted(item["ms"] for item in items)
        rows.append(
            {
                "phase": phase,
                "kind": kind,
                "requests": len(items),
                "served": sum(1 for i in items if i["status"] == 200),
                "failed": sum(1 for i in items if i["status"] != 200),
                "primary": served_by["primary"],
                "fallback": served_by["fallback"],
                "cache": served_by["cache"],
                "p50_ms": round(statistics.median(times), 1),
                "p99_ms": round(times[int(0.99 * (len(times) - 1))], 1),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = cli.Parser(
        prog="python -m ops drill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", default="dev", help="stack config to emulate (when no --url)")
    parser.add_argument(
        "--url", type=cli.url, help="a running emulator (python -m localcdn, make serve); default: start one"
    )
    parser.add_argument(
        "--origin",
        choices=("s3", "thumbor"),
        default="s3",
        help="the primary of the emulator it starts: our renderer (s3) or thumbor, whose process is "
        "killed for the down phase",
    )
    parser.add_argument("--seconds", type=cli.positive_float, default=40, help="length of the drill (default 40)")
    parser.add_argument("--clients", type=cli.positive_int, default=4, help="concurrent clients (default 4)")
    parser.add_argument(
        "--expire-every", type=cli.positive_float, default=3, help="seconds between cache expiries (default 3)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    stack = args.stack
    if args.url:
        # What listens there, and which stack it runs (whose widths are the standard set).
        health = _call(args.url, "GET", "/_localcdn/health", timeout=30)
        if not isinstance(health, dict) or "stack" not in health:
            raise cli.Unavailable(f"{args.url} is not a localcdn emulator", "start one with make serve, or check --url")
        stack = str(health["stack"])
    widths = from_stack_file(stack).widths
    emulator = None
    if not args.url:
        try:
            emulator = Emulator("--origin", args.origin, stack=stack)
        except RuntimeError as error:  # it exited, or never became ready: its last line says why
            said = [line for line in str(error).splitlines() if line.strip()]
            raise cli.Unavailable(f"the emulator did not start: {said[-1] if said else error}") from None
    try:
        base = args.url or (emulator.base if emulator else "")
        result = run(base, widths, args.seconds, args.clients, args.expire_every, progress=not args.json)
    finally:
        if emulator is not None:
            emulator.stop()
    rows = result["report"]
    if args.json:
        print(json.dumps(result))
    else:
        headers = ("phase", "kind", "requests", "served", "failed", "primary", "fallback", "cache", "p50_ms", "p99_ms")
        print("  ".join(f"{h:>12}" for h in headers))
        for row in rows:
            print("  ".join(f"{row[h]!s:>12}" for h in headers))
    failed_standard = sum(row["failed"] for row in rows if row["kind"] == "standard")
    print(f"standard variants failed: {failed_standard}", file=sys.stderr)
    return 1 if failed_standard else 0
