"""Backfill the fallback bucket of a stack: every original's standard set, then orphans out."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TextIO

import boto3
from botocore.config import Config

from components.config import ConfigError, from_stack_file
from edge.sync import Original, Summary, Sync


class Progress:
    """One line on stderr, redrawn: [#####.....] 37/100 built 300 skipped 0 failed 1 12.3 MB."""

    def __init__(self, total: int, stream: TextIO = sys.stderr):
        self.total, self.stream, self.done = total, stream, 0
        self.started = time.monotonic()
        self.interactive = stream.isatty()

    def update(self, summary: Summary) -> None:
        self.done += 1
        if self.interactive or self.done == self.total or self.done % 50 == 0:
            filled = int(30 * self.done / max(1, self.total))
            line = (
                f"[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} built {summary.built} "
                f"skipped {summary.skipped} failed {summary.failed} {summary.bytes_written / 1e6:.1f} MB "
                f"{time.monotonic() - self.started:.0f}s"
            )
            self.stream.write(("\r" if self.interactive else "") + line + ("" if self.interactive else "\n"))
            self.stream.flush()

    def close(self) -> None:
        if self.interactive:
            self.stream.write("\n")


def bounded(
    executor: ThreadPoolExecutor,
    sync: Sync,
    originals: Iterator[Original],
    limit: int,
) -> Iterator[Future[Summary]]:
    """Submit builds as the listing streams in, never more than `limit` in flight (memory stays bounded)."""
    pending: set[Future[Summary]] = set()
    for original in originals:
        pending.add(executor.submit(sync.build, original))
        if len(pending) >= limit:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from done
    yield from pending


def run(
    stack: str,
    *,
    endpoint_url: str | None,
    concurrency: int,
    dry_run: bool,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> Summary:
    settings = from_stack_file(stack).edge_settings()
    config = Config(
        retries={"max_attempts": 5, "mode": "adaptive"},
        max_pool_connections=max(10, 2 * concurrency),
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    clients: dict[str, Any] = {}
    lock = threading.Lock()

    def client(region: str) -> Any:
        with lock:
            if region not in clients:
                clients[region] = boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)
            return clients[region]

    # Failures are printed from the summary (and remembered by their markers); no queue here.
    sync = Sync(settings, client, dry_run=dry_run)
    total = sum(1 for _ in sync.originals())
    err.write(
        f"sync {stack}: {total} originals in {settings.primary_bucket}, standard set of "
        f"{len(settings.widths) * len(settings.standard_formats)} into {settings.fallback_bucket}"
        f"{' (dry run: nothing is written)' if dry_run else ''}\n"
    )
    summary = Summary(dry_run=dry_run)
    progress = Progress(total, err)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="sync") as executor:
        for future in bounded(executor, sync, sync.originals(), 2 * concurrency):
            summary.add(future.result())
            progress.update(summary)
    progress.close()
    summary.deleted += sync.orphans({"phase": "orphans", "after": ""}, lambda: float("inf"), summary)
    verb = "would build" if dry_run else "built"
    out.write(
        f"{verb} {summary.built}, skipped {summary.skipped}, deleted {summary.deleted}, failed "
        f"{summary.failed}, {summary.bytes_written} bytes written, {summary.originals} originals\n"
    )
    for failure in summary.failures:
        out.write(f"  failed: {failure['key']}: {failure['reason']}\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops sync", description=__doc__)
    parser.add_argument("--stack", required=True, help="the stack whose Pulumi.<stack>.yaml names the buckets")
    parser.add_argument("--endpoint-url", help="an S3 endpoint other than AWS's (the emulator prints its own)")
    parser.add_argument("--concurrency", type=int, default=4, help="originals rendered at once (default 4)")
    parser.add_argument("--dry-run", action="store_true", help="list what would be built or deleted; write nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON as well")
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error(f"--concurrency: expected a positive integer, got {args.concurrency}")
    if args.endpoint_url:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    try:
        summary = run(args.stack, endpoint_url=args.endpoint_url, concurrency=args.concurrency, dry_run=args.dry_run)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary.as_dict()))
    return 1 if summary.failed else 0
