"""A benchmark step in a fresh Python process of its own (its memory, threads and imports its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


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
