"""The viewer-request CloudFront Function, run in an embedded V8 (mini-racer)."""

from __future__ import annotations

import json
import threading
from typing import Any

from py_mini_racer import MiniRacer


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
    """One loaded copy of normalize.js; `run` takes a viewer request, returns what CloudFront would."""

    def __init__(self, code: str):
        self._lock = threading.Lock()
        self._js = MiniRacer()
        self._js.eval(code)

    def close(self) -> None:
        """Free the V8 isolate now (mini-racer can hang at interpreter exit after many calls)."""
        with self._lock:
            self._js.close()

    def run(
        self, uri: str, querystring: str = "", headers: dict[str, str] | None = None, *, method: str = "GET"
    ) -> dict[str, Any]:
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
        with self._lock:
            result = self._js.eval(f"JSON.stringify(handler({json.dumps(event)}))")
        return dict(json.loads(str(result)))
