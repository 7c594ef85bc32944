"""Sync from a third-party service: memory stays flat however large the service's answers are.

1,000 originals listed by a JSON-lines manifest (served over HTTP, streamed), each answered by
the service with a 20 MB body: the variant bytes the sync job streams from the HTTP response
into the fallback bucket (the emulator's S3, moto, in this process). The sync job runs alone in
a worker process (`python -m bench.servicebench worker`): its RSS once ready (imports done,
clients made, one listing answered) is the idle figure; its peak RSS over the whole run
(VmHWM) is the peak. Goal: peak within 50 MB of idle.

The stand-in service is a small HTTP server here, not thumbor: thumbor would spend hours
rendering 1,000 originals of 20 MB, and what the goal is about is the streaming, which depends
only on the size of the responses. It sends ETag, Content-Length and the asked-for type.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from bench import proc

ORIGINALS = 1000
RESPONSE_BYTES = 20 * 1024 * 1024
BLOCK = hashlib.sha256(b"image-cdn").digest() * (1024 * 1024 // 32)  # 1 MiB, written 20 times


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class _Service(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served: ClassVar[list[int]] = [0]

    def do_GET(self) -> None:
        if self.path == "/manifest.jsonl":
            body = "".join(json.dumps({"key": f"big/{n:05d}.jpg"}) + "\n" for n in range(ORIGINALS)).encode()
            self._answer("application/x-ndjson", len(body))
            self.wfile.write(body)
            return
        self._answer("image/webp", RESPONSE_BYTES, etag=hashlib.sha1(self.path.encode()).hexdigest())
        for _ in range(RESPONSE_BYTES // len(BLOCK)):
            self.wfile.write(BLOCK)
        self.served[0] += 1

    def _answer(self, kind: str, length: int, etag: str = "") -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length))
        if etag:
            self.send_header("ETag", f'"{etag}"')
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def settings_for(base: str) -> Any:
    from edge.settings import Settings

    return Settings(
        primary_bucket="svc-origin",
        fallback_bucket="svc-fallback",
        widths=(2560,),
        standard_formats=("webp",),
        primary_kind="http",
        primary_domain="service.localhost",
        primary_template="/{key}?w={width}&h={height}&fit={fit}&crop={crop}&q={quality}&fm={format}",
        originals_source="jsonl",
        originals_location=base + "/manifest.jsonl",
    )


def _rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker(endpoint: str, base: str) -> dict[str, Any]:
    """In a fresh process: the sync job over the whole manifest, with its RSS before and at peak."""
    from sync.backfill import s3_factory
    from sync.job import Sync

    settings = settings_for(base)
    sync = Sync(settings, s3_factory(endpoint), service_base=base)
    sync.fallback.list_objects_v2(Bucket=settings.fallback_bucket, MaxKeys=1)  # clients made, connections open
    sync.http.request("GET", base + "/manifest.jsonl").data  # noqa: B018 - the pool warmed up
    idle = _rss_mb("VmRSS")
    started = time.perf_counter()
    summary = sync.reconcile()
    return {
        "idle_mb": round(idle, 1),
        "peak_mb": round(_rss_mb("VmHWM"), 1),
        "seconds": round(time.perf_counter() - started, 1),
        "built": summary.built,
        "failed": summary.failed,
        "bytes_written": summary.bytes_written,
    }


def run() -> dict[str, Any]:
    from localcdn.storage import LocalS3

    service = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Service)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{service.server_address[1]}"
    storage = LocalS3(settings_for(base))
    try:
        log(f"sync from a service: {ORIGINALS} originals, {RESPONSE_BYTES >> 20} MB per response ...")
        measured = proc.run_module("bench.servicebench", "worker", storage.endpoint, base, env=proc.local_credentials())
    finally:
        storage.stop()
        service.shutdown()
    measured.update(
        originals=ORIGINALS,
        response_mb=RESPONSE_BYTES >> 20,
        added_mb=round(measured["peak_mb"] - measured["idle_mb"], 1),
        mb_per_second=round(measured["bytes_written"] / 2**20 / measured["seconds"], 1),
        served=_Service.served[0],
    )
    return measured


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    print(json.dumps(worker(sys.argv[2], sys.argv[3])))
