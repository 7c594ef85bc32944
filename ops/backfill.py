"""Backfill the fallback bucket of a stack: the reconcile's own batches, in a local process pool.

    python -m ops sync --stack prod                   # here, with AWS credentials from the environment
    python -m ops sync --stack prod --on-aws          # start the stack's state machine and follow it
    python -m ops sync --stack dev --endpoint-url http://127.0.0.1:PORT   # the emulator's S3

Locally it runs the state machine's steps: the plan (`edge.sync.Sync.plan`: one pass over
`originals/` and the fallback, orphans deleted on the way) on a thread, and what a Distributed
Map child runs (`Sync.build_batch`) on the batches it finds, `--workers` processes at a time
(default: the machine's cores); a progress bar (tqdm) counts originals. The emulator's
`POST /_localcdn/sync` calls `reconcile()` below.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TextIO

from tqdm import tqdm

from components.config import from_stack_file
from edge.settings import Settings
from edge.sync import BUILD_BATCH, Original, Summary, Sync, chunked


def _bar(stream: TextIO | None, total: int | None) -> tqdm[Any]:
    """A progress bar on `stream` (none without one): as wide as the terminal, or 100 columns in a log."""
    tty = stream is not None and stream.isatty()
    return tqdm(
        total=total,
        unit=" originals",
        file=stream,
        disable=stream is None,
        dynamic_ncols=tty,
        ncols=None if tty else 100,
    )


# -- the worker processes ---------------------------------------------------------------

_worker: Sync | None = None


def s3_factory(endpoint_url: str | None, pool: int = 10) -> Callable[[str], Any]:
    """One boto3 S3 client per region (credentials from the environment; `endpoint_url`: not AWS)."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 5, "mode": "adaptive"},
        max_pool_connections=pool,
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    clients: dict[str, Any] = {}
    # Not AWS (the emulator's S3): its own credentials, so that a machine without AWS credentials in
    # its environment runs the emulator's reconcile too (`make drill` did not, before).
    local = {"aws_access_key_id": "local", "aws_secret_access_key": "local"} if endpoint_url else {}

    def client(region: str) -> Any:
        if region not in clients:
            clients[region] = boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config, **local)
        return clients[region]

    return client


def _start_worker(settings: str, endpoint_url: str | None, dry_run: bool, service_base: str | None = None) -> None:
    global _worker
    _worker = Sync(
        Settings.from_dict(json.loads(settings)), s3_factory(endpoint_url), dry_run=dry_run, service_base=service_base
    )


Item = tuple[str, str, int, list[str] | None]


def _build(batch: list[Item]) -> dict[str, Any]:
    """One batch in a worker: what `edge.sync.run_batch` does for a Distributed Map child."""
    assert _worker is not None, "the pool's initializer did not run"
    originals = [Original(key, etag, size) for key, etag, size, _ in batch]
    stored = {key: (frozenset(names) if names is not None else None) for key, _, _, names in batch}
    return _worker.build_batch(originals, stored).as_dict()


def _bounded(pool: ProcessPoolExecutor, batches: Iterator[list[Item]], limit: int) -> Iterator[tuple[int, Future[Any]]]:
    """Submit batches as the plan finds them, never more than `limit` in flight (memory stays bounded)."""
    pending: dict[Future[Any], int] = {}
    for batch in batches:
        pending[pool.submit(_build, batch)] = len(batch)
        if len(pending) >= limit:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield pending.pop(future), future
    for future in list(pending):
        yield pending.pop(future), future


def _planned(sync: Sync, batch_size: int, planned: list[Summary], bar: tqdm[Any]) -> Iterator[list[Item]]:
    """The plan's work in batches, as the plan finds it: the plan runs on a thread and hands batches
    over through a small queue (it waits while the pool is busy, so nothing piles up)."""
    handed: queue.Queue[list[Item] | BaseException | None] = queue.Queue(maxsize=4)

    def produce() -> None:
        try:
            batch: list[Item] = []

            def work(original: Original, names: frozenset[str] | None) -> None:
                batch.append((original.key, original.etag, original.size, sorted(names) if names is not None else None))
                if len(batch) >= batch_size:
                    handed.put(list(batch))
                    batch.clear()

            cursor: dict[str, Any] | None = None
            while True:
                summary, cursor = sync.plan(cursor, work)
                planned.append(summary)
                bar.update(summary.originals)
                if cursor is None:
                    break
            if batch:
                handed.put(batch)
            handed.put(None)
        except BaseException as error:  # handed to the caller's thread, raised there
            handed.put(error)

    thread = threading.Thread(target=produce, name="plan", daemon=True)
    thread.start()
    while True:
        item = handed.get()
        if item is None:
            break
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def reconcile(
    settings: Settings,
    *,
    endpoint_url: str | None,
    workers: int = 0,
    batch_size: int = BUILD_BATCH,
    dry_run: bool = False,
    report: Callable[[dict[str, str]], None] | None = None,
    progress: TextIO | None = None,
    service_base: str | None = None,
) -> Summary:
    """The reconcile with its builds in a pool of `workers` processes (0: one per core): the plan
    (one pass over `originals/` and the fallback, orphans deleted on the way) finds what needs
    building, and the pool builds it in batches as it is found. A manifest source has no plan: every
    listed original is a batch item, as on AWS."""
    workers = workers or os.cpu_count() or 1
    sync = Sync(settings, s3_factory(endpoint_url, pool=32), dry_run=dry_run, report=report, service_base=service_base)
    summary = Summary(dry_run=dry_run)
    # spawn, not fork: the caller (the emulator) has threads, and a forked child would inherit their locks
    context = multiprocessing.get_context("spawn")
    bar = _bar(progress, None)
    planned: list[Summary] = []
    if settings.originals_source == "s3":
        batches: Iterator[list[Item]] = _planned(sync, batch_size, planned, bar)
    else:
        batches = ([(o.key, o.etag, o.size, None) for o in batch] for batch in chunked(sync.originals(), batch_size))
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(settings.to_json(), endpoint_url, dry_run, service_base),
    ) as pool:
        for size, future in _bounded(pool, batches, 2 * workers):
            done = Summary.from_dict(future.result())
            summary.add(done)
            for failure in done.failures:
                (report or (lambda message: None))(failure)
            bar.update(size)
            bar.set_postfix(built=summary.built, failed=summary.failed, refresh=False)
    bar.close()
    for part in planned:
        summary.add(part)
    return summary


# -- on AWS: the stack's state machine ----------------------------------------------------


def run_on_aws(settings: Settings, name_prefix: str, err: TextIO, *, stepfunctions: Any = None, sts: Any = None) -> int:
    """Start the stack's reconcile state machine and follow its Map Run until it ends."""
    import boto3

    region = settings.primary_region
    stepfunctions = stepfunctions or boto3.client("stepfunctions", region_name=region)
    account = (sts or boto3.client("sts", region_name=region)).get_caller_identity()["Account"]
    machine = f"arn:aws:states:{region}:{account}:stateMachine:{name_prefix}-sync"
    execution = stepfunctions.start_execution(
        stateMachineArn=machine, name=f"backfill-{int(time.time())}", input=json.dumps({})
    )["executionArn"]
    err.write(f"started {execution}\n")
    bar = _bar(err, None)
    counts: dict[str, int] = {}
    while True:
        described = stepfunctions.describe_execution(executionArn=execution)
        status = described["status"]
        # one Map Run per plan leg that found work: their counts add up
        counts = {"total": 0, "succeeded": 0, "failed": 0}
        for run in stepfunctions.list_map_runs(executionArn=execution).get("mapRuns", []):
            items = stepfunctions.describe_map_run(mapRunArn=run["mapRunArn"]).get("itemCounts", {})
            for name in counts:
                counts[name] += int(items.get(name, 0))
        bar.total = counts["total"] or bar.total
        bar.n = counts["succeeded"] + counts["failed"]
        bar.set_postfix(failed=counts["failed"], refresh=False)
        bar.refresh()
        if status != "RUNNING":
            bar.close()
            output = json.loads(described.get("output") or "{}")
            if int((output.get("guard") or {}).get("running", 1)) > 1:
                err.write(f"another reconcile was running, so this one did nothing: {execution}\n")
                return 0
            err.write(
                f"{status}: {counts['succeeded']} of {counts['total']} items succeeded, "
                f"{counts['failed']} failed: {execution}\n"
            )
            return 0 if status == "SUCCEEDED" else 1
        time.sleep(5)


def main(argv: list[str] | None = None) -> int:
    from ops import cli

    parser = cli.Parser(
        prog="python -m ops sync", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", required=True, help="the stack whose Pulumi.<stack>.yaml names the buckets")
    parser.add_argument(
        "--endpoint-url", type=cli.url, help="an S3 endpoint other than AWS's (the emulator prints its own)"
    )
    parser.add_argument("--workers", type=int, default=0, help="processes building at once (default: one per core)")
    parser.add_argument(
        "--batch-size", type=int, default=BUILD_BATCH, help=f"originals per batch (default {BUILD_BATCH})"
    )
    parser.add_argument("--dry-run", action="store_true", help="count what would be built or deleted; write nothing")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON as well")
    parser.add_argument("--on-aws", action="store_true", help="start the stack's state machine instead, and follow it")
    args = parser.parse_args(argv)
    for name in ("workers", "batch_size"):
        if getattr(args, name) < (0 if name == "workers" else 1):
            parser.error(f"--{name.replace('_', '-')}: expected a positive integer, got {getattr(args, name)}")
    if args.endpoint_url:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    config = from_stack_file(args.stack)  # a missing or bad stack is python -m ops's to report
    settings = config.edge_settings()
    if args.on_aws:
        return run_on_aws(settings, config.name_prefix, sys.stderr)
    # One request before anything is printed or started: no credentials, a refusal or a stack that is
    # not deployed is then one line from python -m ops, not a failure in the middle of a progress bar.
    s3_factory(args.endpoint_url)(settings.fallback_region).list_objects_v2(Bucket=settings.fallback_bucket, MaxKeys=1)
    sys.stderr.write(
        f"sync {args.stack}: originals in {settings.primary_bucket}, standard set of "
        f"{len(settings.widths) * len(settings.standard_formats)} into {settings.fallback_bucket}"
        f"{' (dry run: nothing is written)' if args.dry_run else ''}\n"
    )
    summary = reconcile(
        settings,
        endpoint_url=args.endpoint_url,
        workers=args.workers,
        batch_size=args.batch_size,
        dry_run=args.dry_run,
        progress=sys.stderr,
    )
    verb = "would build" if args.dry_run else "built"
    print(
        f"{verb} {summary.built}, skipped {summary.skipped}, deleted {summary.deleted}, failed "
        f"{summary.failed}, {summary.bytes_written} bytes written, {summary.originals} originals"
    )
    for failure in summary.failures:
        print(f"  failed: {failure['key']}: {failure['reason']}")
    if args.json:
        print(json.dumps(summary.as_dict()))
    return 1 if summary.failed else 0
