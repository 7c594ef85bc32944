"""The viewer function's work per request, measured in V8 (mini-racer), against the baseline.

CloudFront Functions are capped by their compute utilization (work per request, not wall
time; AWS does not publish it as an instruction count). What we can measure here is time per
call in the same engine family: each case is run `calls` times inside V8 (one event parsed
per call, the same for every case), so the Python-V8 crossing is not counted.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from components import bundle
from edge import signing
from edge.settings import Settings
from localcdn.kvs import KeyValueStore
from localcdn.viewer import ViewerFunction, cloudfront_query

BASELINE = Path(__file__).with_name("baseline_normalize.js")
CHROME = "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8"
FULL = Settings(
    signing="required",
    client_hints=True,
    crops=("center", "entropy", "attention", "faces"),
    presets=(("thumb", 160, 160, 60, "cover", "attention"), ("card", 480, 320, 60, "cover", "entropy")),
    formats=("avif", "webp", "jpeg", "png", "jxl"),
    quality_target="good",
)
SECRET = "0123456789abcdef" * 4


def _event(uri: str, query: str, headers: dict[str, str]) -> str:
    request = {
        "method": "GET",
        "uri": uri,
        "querystring": cloudfront_query(query),
        "headers": {k.lower(): {"value": v} for k, v in headers.items()},
        "cookies": {},
    }
    return json.dumps({"version": "1.0", "context": {"eventType": "viewer-request"}, "request": request})


def _per_call(viewer: ViewerFunction, event: str, calls: int) -> float:
    """Mean microseconds per call over `calls` calls."""
    loop = f"""(async function () {{
      var text = {json.dumps(event)}, t = Date.now(), last;
      for (var i = 0; i < {calls}; i++) last = await handler(JSON.parse(text));
      return JSON.stringify({{ms: Date.now() - t, last: last}});
    }})()"""
    answer = json.loads(viewer.evaluate(loop))
    assert "statusCode" not in answer["last"] or answer["last"]["statusCode"] != 403, answer["last"]
    return float(answer["ms"] * 1000 / calls)


def run(calls: int = 20_000, rounds: int = 5) -> dict[str, Any]:
    kvs = KeyValueStore("bench")
    kvs.put(signing.KEY_PREFIX + "1", SECRET)
    plain_query = "w=800&q=75"
    signed = signing.sign("/products/shoe.jpg?w=800&h=600&q=75&crop=attention&dpr=2", SECRET, "1", expires=4102444800)
    path, _, signed_query = signed.partition("?")
    plain = {"Accept": CHROME}
    hints = {"Accept": CHROME, "Sec-CH-DPR": "2.625", "Sec-CH-Viewport-Width": "412"}
    cases = {
        "baseline": (BASELINE.read_text(), None, "/products/shoe.jpg", plain_query, plain),
        "now, features off": (bundle.viewer_code(Settings()), None, "/products/shoe.jpg", plain_query, plain),
        "now, worst case": (bundle.viewer_code(FULL), kvs, path, signed_query, hints),
    }
    out: dict[str, Any] = {"calls": calls, "rounds": rounds}
    loaded = {
        name: (ViewerFunction(code, store), _event(uri, query, headers))
        for name, (code, store, uri, query, headers) in cases.items()
    }
    times: dict[str, list[float]] = {name: [] for name in cases}
    try:
        for viewer, event in loaded.values():
            _per_call(viewer, event, calls)  # warm-up: V8 compiles the hot paths
        for _ in range(rounds):  # interleaved, so a slow moment of the machine hits every case alike
            for name, (viewer, event) in loaded.items():
                times[name].append(_per_call(viewer, event, calls))
    finally:
        for viewer, _ in loaded.values():
            viewer.close()
    for name, (code, *_) in cases.items():
        out[name] = {"bytes": len(code.encode()), "us_per_call": round(statistics.median(times[name]), 2)}
    # The worst case pays for one HMAC-SHA256 in cfruntime.js's pure-JS stand-in; CloudFront's
    # crypto module is native. Its share, measured alone on the same message:
    viewer = ViewerFunction(bundle.viewer_code(FULL), kvs)
    try:
        message = json.dumps(signing.message(path, signed_query))
        loop = f"""(function () {{
          var c = require('crypto'), key = {json.dumps(SECRET)}, t = Date.now();
          for (var i = 0; i < {calls}; i++) c.createHmac('sha256', key).update({message}).digest('hex');
          return Date.now() - t;
        }})()"""
        hmac_us = statistics.median(float(viewer.evaluate(loop)) * 1000 / calls for _ in range(rounds))
    finally:
        viewer.close()
    out["now, worst case"]["stand_in_hmac_us"] = round(hmac_us, 2)
    base = out["baseline"]["us_per_call"]
    for name in ("now, features off", "now, worst case"):
        out[name]["x_baseline"] = round(out[name]["us_per_call"] / base, 2)
    out["limit_bytes"] = bundle.VIEWER_FUNCTION_LIMIT
    return out
