"""`python -m localcdn --stack dev`: the whole service on this machine (make serve)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

# A Ctrl-C while these load is a Ctrl-C during start-up like any other. Only what reading the
# config and taking the port need is imported here: the service's modules (moto, uvicorn, Pillow:
# seconds on a cold disk) load once the port is ours, so a busy port is said at once.
try:
    from components.config import ROOT, ConfigError, from_stack_file
    from localcdn import thumbor
    from localcdn.guard import authority
except KeyboardInterrupt:
    print("localcdn: interrupted while starting (Ctrl-C): stopped", file=sys.stderr, flush=True)
    raise SystemExit(130) from None

if TYPE_CHECKING:
    from localcdn.distribution import Distribution
    from localcdn.storage import LocalS3
    from localcdn.thumbor import ThumborPrimary


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts (a busy port is one line, not a traceback)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets that say so. Without
    # it, a response written as headers then body waited on the client's delayed ACK: 44 ms per
    # request on a kept-alive connection (measured), 1 ms with it.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        hint = "check --host" if isinstance(error, socket.gaierror) else "try --port, or make serve PORT=..."
        message = f"localcdn: cannot listen on {host}:{port}: {error.strerror} ({hint})"
        raise SystemExit(message) from None
    sock.listen(128)
    return sock


def _port(text: str) -> int:
    """A TCP port number (0: any free one), or argparse's usage line naming what came."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return int(text)


def _has_numpy() -> bool:
    try:
        import numpy  # noqa: F401
    except ImportError:
        return False
    return True


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Serve until Ctrl-C. A Ctrl-C while starting (installing samples, starting thumbor) stops as
    cleanly as one while serving: what was started is stopped, one line, exit status 130."""
    try:
        return serve(argv)
    except KeyboardInterrupt:
        fresh = "\n" if sys.stderr.isatty() else ""  # off the line the terminal's ^C is on
        print(f"{fresh}localcdn: interrupted while starting (Ctrl-C): stopped", file=sys.stderr, flush=True)
        return 130


def serve(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m localcdn",
        description=__doc__,
        # one line, so a mistake is two: the usage and what was wrong
        usage="%(prog)s [--stack S] [--port N] [--host H] [--origin s3|thumbor] [--set K=V] [--originals DIR]",
    )
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to run (default: dev)")
    parser.add_argument("--originals", type=Path, help="upload every image below DIR as originals/<relative path>")
    parser.add_argument("--port", type=_port, default=8080, help="port to listen on (default: 8080; 0: any free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    parser.add_argument(
        "--origin",
        choices=("s3", "thumbor"),
        default="s3",
        help="the primary origin: our bucket and renderer (s3, default), or thumbor on loopback as a "
        "third-party image service (make thumbor installs it)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change one image-cdn: config key for this run, as `pulumi config set` would (repeatable)",
    )
    args = parser.parse_args(argv)

    overrides = {}
    for setting in args.set:
        key, equals, value = setting.partition("=")
        if not equals or not key:
            print(f"localcdn: --set {setting}: expected KEY=VALUE, such as catalogAuth=jwt", file=sys.stderr)
            return 2
        overrides[key.removeprefix("image-cdn:")] = value
    try:
        config = from_stack_file(args.stack, overrides=overrides)
    except ConfigError as error:
        print(f"localcdn: {error}", file=sys.stderr)
        # A list given bare (`widths=400,800`, `catalogJwtAudiences=app`): say how lists are written.
        listed = [
            f"{key}={value}"
            for key, value in overrides.items()
            if value[:1] not in "[{"
            and (
                "," in value
                or f"image-cdn:{key}: expected a list" in str(error)
                or f"image-cdn:{key}: expected at least one" in str(error)
            )
        ]
        if listed:
            # `pulumi config set` takes a list as JSON too (--json, or `--path 'widths[0]'`).
            key, _, value = listed[0].partition("=")
            items = [int(item) if item.strip().isdigit() else item.strip() for item in value.split(",")]
            print(
                f"  a list is written as JSON: --set '{key}={json.dumps(items, separators=(',', ':'))}'",
                file=sys.stderr,
            )
        return 2
    except FileNotFoundError:
        stacks = ", ".join(sorted(path.name[len("Pulumi.") : -len(".yaml")] for path in ROOT.glob("Pulumi.*.yaml")))
        print(f"localcdn: no Pulumi.{args.stack}.yaml here: the stacks here are {stacks}", file=sys.stderr)
        return 2
    if args.originals is not None and not args.originals.is_dir():
        print(f"localcdn: --originals {args.originals} is not a folder", file=sys.stderr)
        return 2
    try:
        sock = listen(args.host, args.port)
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2

    settings = config.edge_settings()
    if settings.quality_auto and not _has_numpy():
        # q=auto's metric (edge/perceptual.py) needs numpy, which make serve leaves out (a stack
        # without a qualityTarget never loads it); the deployed resize bundle carries it
        print(
            "localcdn: this stack serves q=auto (qualityTarget), whose metric needs numpy, which make serve "
            "does not install\n  install it: .venv/bin/python -m pip install numpy (make test installs it too)",
            file=sys.stderr,
        )
        sock.close()
        return 2
    primary: ThumborPrimary | None = None
    if settings.primary_kind == "http" and args.origin != "thumbor":
        print(
            f"localcdn: stack {args.stack}'s primary is an image service at {settings.primary_domain}, which "
            f"the emulator does not reach\n  run it against thumbor on loopback: make serve STACK={args.stack} "
            "ORIGIN=thumbor",
            file=sys.stderr,
        )
        sock.close()
        return 2
    if args.origin == "thumbor" and thumbor.executable() is None:
        print("localcdn: no thumbor here: run `make thumbor` first (make serve ORIGIN=thumbor does)", file=sys.stderr)
        sock.close()
        return 2
    storage: LocalS3 | None = None
    distribution: Distribution | None = None
    port = int(sock.getsockname()[1])
    base = "http://" + authority(args.host, port)
    try:
        import uvicorn

        from localcdn import samples
        from localcdn.catalog import LocalCatalog
        from localcdn.distribution import Distribution
        from localcdn.server import JsonErrorsH11Protocol, Service, application
        from localcdn.storage import LocalS3
        from localcdn.thumbor import ThumborPrimary

        if args.origin == "thumbor":
            primary = ThumborPrimary()  # a Ctrl-C while it starts leaves no process and no folder
            settings = primary.settings(settings)
            config = dataclasses.replace(config, default_image=None, watermark=None)
        storage = LocalS3(settings)
        distribution = Distribution(
            settings,
            storage,
            error_caching_seconds=config.error_caching_seconds,
            signing_generation=config.signing_key_generation,
            primary_url=primary.base if primary is not None else None,
            primary_control=primary.control if primary is not None else None,
        )
        catalog = LocalCatalog(config, storage.endpoint, base) if config.catalog else None
        service = Service(
            distribution, args.stack, listen=(args.host, port), quiet=args.quiet, catalog=catalog, thumbor=primary
        )
        # With the samples comes the stack's default image, if it names one; a folder of your
        # own is taken as it is (a default image it lacks is missing, as on AWS).
        originals: dict[str, bytes | Path] = (
            dict(storage.folder_originals(args.originals))
            if args.originals is not None
            else dict(samples.originals(config.default_image))
        )
        source = f"from {args.originals}" if args.originals is not None else "generated samples"
        # Uploads run the ObjectCreated handler, as the bucket notification does in AWS:
        # the fallback holds every standard variant before the first request.
        print(f"localcdn: uploading {len(originals)} originals ({source}) and filling the fallback", flush=True)
        for key, data in originals.items():
            status, result = service.sync.upload(key, data.read_bytes() if isinstance(data, Path) else data)
            if status != 200 or result.get("failed"):
                print(f"  {key}: {result.get('failures') or result}", flush=True)
        server = uvicorn.Server(
            uvicorn.Config(
                application(service),
                http=JsonErrorsH11Protocol,
                lifespan="off",
                access_log=not args.quiet,
                log_level="warning" if args.quiet else "info",
                timeout_graceful_shutdown=5,
                server_header=False,
            )
        )
        keys = list(originals)
        example = f"{base}/{keys[0]}?w=800" if keys else f"{base}/<key>?w=800"
        first = (
            f"thumbor at {primary.base} (signed URLs), originals in {settings.primary_bucket}"
            if primary is not None
            else settings.primary_bucket
        )
        print(
            f"localcdn: stack {args.stack}: {first} ({settings.primary_region}) -> "
            f"{settings.fallback_bucket} ({settings.fallback_region}); {len(keys)} originals"
        )
        print(f"  gallery   {base}/")
        if catalog is not None:
            print(f"  catalogue {base}/api/images  ({catalog.auth}; the gallery calls it through /_localcdn/app/)")
        print(f"  an image  curl -sD- -o /dev/null -H 'Accept: image/avif' '{example}'")
        print(f"  outage    curl -X PUT --data down {base}/_localcdn/primary   (up | down | error)")
        if distribution.signing is not None:
            path = f"/{keys[0] if keys else '<key>'}?w=800"
            print(f"  signing   {settings.signing}: curl -X POST --data '{path}' {base}/_localcdn/sign")
        print("  Ctrl-C stops", flush=True)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again.
        signal.signal(signal.SIGTERM, _interrupt)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        sock.close()
        if distribution is not None:
            distribution.viewer.close()
        if storage is not None:
            storage.stop()
        if primary is not None:
            primary.stop()
    print("localcdn: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
