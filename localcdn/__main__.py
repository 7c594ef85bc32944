"""`python -m localcdn --stack dev`: the whole service on this machine (make serve)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from components.config import ConfigError, from_stack_file
from localcdn import samples
from localcdn.distribution import Distribution
from localcdn.server import Service, make_server
from localcdn.storage import LocalS3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcdn", description=__doc__)
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml to run (default: dev)")
    parser.add_argument("--originals", type=Path, help="upload every image below DIR as originals/<relative path>")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log lines")
    args = parser.parse_args(argv)

    try:
        config = from_stack_file(args.stack)
    except ConfigError as error:
        print(f"localcdn: {error}", file=sys.stderr)
        return 2
    except FileNotFoundError:
        print(f"localcdn: no Pulumi.{args.stack}.yaml here", file=sys.stderr)
        return 2
    if args.originals is not None and not args.originals.is_dir():
        print(f"localcdn: --originals {args.originals} is not a folder", file=sys.stderr)
        return 2

    settings = config.edge_settings()
    storage = LocalS3(settings)
    try:
        if args.originals is not None:
            keys = storage.upload_folder(args.originals)
            source = f"from {args.originals}"
        else:
            for key, data in samples.originals().items():
                storage.put_original(key, data)
            keys, source = list(samples.originals()), "generated samples"
        distribution = Distribution(
            settings, storage, error_caching_seconds=config.error_caching_seconds, cors_origins=config.cors_origins
        )
        server = make_server(Service(distribution, args.stack, quiet=args.quiet), args.host, args.port)
    except BaseException:
        storage.stop()
        raise

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    base = f"http://{args.host}:{server.server_address[1]}"
    example = f"{base}/{keys[0]}?w=800" if keys else f"{base}/<key>?w=800"
    print(
        f"localcdn: stack {args.stack}: {settings.primary_bucket} ({settings.primary_region}) -> "
        f"{settings.fallback_bucket} ({settings.fallback_region}); {len(keys)} originals ({source})"
    )
    print(f"  gallery   {base}/")
    print(f"  an image  curl -sD- -o /dev/null -H 'Accept: image/avif' '{example}'")
    print(f"  outage    curl -X PUT --data down {base}/_localcdn/primary   (up | down | error)")
    print("  Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        storage.stop()
        print("localcdn: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
