"""The viewer-request CloudFront Function, run in an embedded V8 (mini-racer).

What runs is the code as deployed (`components.bundle.viewer_code`); the runtime around it
that a bare V8 lacks (the `cloudfront` module's KeyValueStore helpers, `require('crypto')`,
the emulator's clock) comes from `cfruntime.js`, a labelled stand-in. The one change made to
the code: cloudfront-js-2.0 loads the `cloudfront` module with an ES import, which a V8
script cannot, so that line becomes a binding to the stand-in.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from py_mini_racer import JSPromise, MiniRacer

if TYPE_CHECKING:
    from localcdn.kvs import KeyValueStore

RUNTIME = (Path(__file__).parent / "cfruntime.js").read_text()
IMPORT = "import cf from'cloudfront';"
IMPORT_SPACED = "import cf from 'cloudfront';"


def cloudfront_query(querystring: str) -> dict[str, dict[str, Any]]:
    """A raw query string in CloudFront Functions' shape: values as sent, duplicates in multiValue."""
    query: dict[str, dict[str, Any]] = {}
    for pair in querystring.split("&") if querystring else []:
        name, _, value = pair.partition("=")
        if not name:
            continue
        entry = query.get(name)
        if entry is None:
            query[name] = {"value": value}
        else:
            entry.setdefault("multiValue", [{"value": entry["value"]}]).append({"value": value})
    return query


class ViewerFunction:
    """One loaded copy of the viewer function; `run` takes a viewer request, returns what CloudFront would."""

    def __init__(self, code: str, kvs: KeyValueStore | None = None):
        self._lock = threading.Lock()
        self._js = MiniRacer()
        self._js.eval(RUNTIME)
        self._kvs = kvs
        self._kvs_version = -1
        self._js.eval(code.replace(IMPORT_SPACED, "var cf = __cloudfront;").replace(IMPORT, "var cf=__cloudfront;"))

    def close(self) -> None:
        """Free the V8 isolate now (mini-racer can hang at interpreter exit after many calls)."""
        with self._lock:
            self._js.close()

    def _sync_kvs(self) -> None:
        if self._kvs is None or self._kvs.version == self._kvs_version:
            return
        data, meta = self._kvs.snapshot()
        self._js.eval(f"__kvsData = {json.dumps(data)}; __kvsMeta = {json.dumps(meta)};")
        self._kvs_version = self._kvs.version

    def evaluate(self, script: str) -> str:
        """Run `script` in the function's isolate (the store synced first); a promise is awaited.

        For the benchmarks (a loop of calls inside V8) and for tests of the runtime stand-in.
        """
        with self._lock:
            self._sync_kvs()
            value = self._js.eval(script)
            if isinstance(value, JSPromise):
                value = value.get()
        return str(value)

    def run(
        self,
        uri: str,
        querystring: str = "",
        headers: dict[str, str] | None = None,
        *,
        method: str = "GET",
        now: float | None = None,
    ) -> dict[str, Any]:
        """Invoke the handler; `now` (Unix seconds) is what Date.now() says, else the real time."""
        event = {
            "version": "1.0",
            "context": {"eventType": "viewer-request"},
            "viewer": {"ip": "127.0.0.1"},
            "request": {
                "method": method,
                "uri": uri,
                "querystring": cloudfront_query(querystring),
                "headers": {name.lower(): {"value": value} for name, value in (headers or {}).items()},
                "cookies": {},
            },
        }
        clock = "null" if now is None else repr(now * 1000)
        with self._lock:
            self._sync_kvs()
            self._js.eval(f"__clock = {clock};")
            promise = self._js.eval(
                f"Promise.resolve(handler({json.dumps(event)})).then(function (r) {{ return JSON.stringify(r); }})"
            )
            result = promise.get()  # type: ignore[union-attr]
        return dict(json.loads(str(result)))
