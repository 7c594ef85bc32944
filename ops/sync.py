"""Backfill the fallback bucket of a stack: `python -m ops sync`.

    python -m ops sync --stack prod                   # here, with AWS credentials from the environment
    python -m ops sync --stack prod --on-aws          # start the stack's state machine and follow it
    python -m ops sync --stack dev --endpoint-url http://127.0.0.1:PORT   # the emulator's S3

Locally it runs the reconcile's own steps (sync/backfill.py: the plan on a thread, the batches in
`--workers` processes, default the machine's cores); a progress bar (tqdm) counts originals. With
`--on-aws` it starts the stack's state machine instead and follows its Map Runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, TextIO

from components.config import from_stack_file
from edge.settings import Settings
from sync.backfill import progress_bar, reconcile, s3_factory
from sync.job import BUILD_BATCH


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
    bar = progress_bar(err, None)
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
