"""A benchmark step in a fresh process of its own (its memory, threads and imports its own): Python's or node's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


def run_module(module: str, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> dict[str, Any]:
    """`python -m module args...` from the repository, `env` over this environment; the JSON object
    on the last line of its output, or RuntimeError with the end of its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args[:1])} failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def local_credentials() -> dict[str, str]:
    """Credentials for the emulator's S3, which takes any: the environment's when it has some."""
    return {name: os.environ.get(name, "local") for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}


def worker(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> dict[str, Any]:
    """A step of bench/worker.py in a process of its own."""
    return run_module("bench.worker", *args, env=env, stdin=stdin)


def ensure_sharp() -> str | None:
    """Install sharp (pinned in bench/package.json) into bench/node_modules; node's path, or None when
    npm is missing."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None
    if not (BENCH / "node_modules" / "sharp").is_dir():
        print("installing sharp with npm ...", file=sys.stderr, flush=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--no-save", "--loglevel=error"], cwd=BENCH, check=True
        )
    return shutil.which("node")
