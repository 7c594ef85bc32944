"""The reconcile run here: the state machine's own steps, with the builds in a local process pool.

What `python -m ops sync` (ops/sync.py), the emulator's `POST /_localcdn/sync` (localcdn/jobs.py)
and the benchmarks call. It runs the state machine's steps: the plan (`sync.job.Sync.plan`: one
pass over `originals/` and the fallback, orphans deleted on the way) on a thread, and what a
Distributed Map child runs (`Sync.build_batch`) on the batches it finds, `workers` processes at a
time (default: the machine's cores); a progress bar (tqdm) counts originals. Never in the sync
function's bundle: the function is one batch, this is the whole reconcile on one machine.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, TextIO

from tqdm import tqdm

from edge.settings import Settings
from sync.job import BUILD_BATCH, Original, Summary, Sync, chunked


def progress_bar(stream: TextIO | None, total: int | None) -> tqdm[Any]:
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
    """One batch in a worker: what `sync.job.run_batch` does for a Distributed Map child."""
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
    bar = progress_bar(progress, None)
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
