"""`python -m bench.first_run` (also run by `make bench`): a newcomer's first `make serve`, timed.

The checkout's files (what a clone holds, with any uncommitted changes; or `--ref COMMIT`'s) are copied to a fresh
folder with no `.venv/`, and `make serve` runs there with empty pip and uv caches, so every
package is downloaded: the seconds from `make serve` to the first 200 from the emulator, and the
size of the `.venv/` it made. Written to bench/first_run.json; the README quotes it
(bench/figures.py renders them; tests/test_readme_figures.py compares them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "first_run.json"
GIVE_UP_SECONDS = 900


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def size_of(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def answered(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return int(answer.status) == 200
    except OSError:
        return False


def measure(ref: str | None = None, installer: str = "uv") -> dict[str, Any]:
    """`ref`: a commit to measure (what a clone of it holds), instead of the checkout's files."""
    with tempfile.TemporaryDirectory(prefix="image-cdn-first-run-") as scratch:
        clone, caches = Path(scratch) / "clone", Path(scratch) / "caches"
        if ref:
            clone.mkdir()
            archive = subprocess.run(["git", "archive", ref], cwd=ROOT, capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(clone)], input=archive, check=True)
        else:
            for name in tracked_files():
                (clone / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, clone / name)
        port = free_port()
        env = {
            **os.environ,
            "PIP_CACHE_DIR": str(caches / "pip"),
            "UV_CACHE_DIR": str(caches / "uv"),
            "XDG_CACHE_HOME": str(caches),
            "PIP_NO_CACHE_DIR": "",
        }
        env.pop("VIRTUAL_ENV", None)
        started = time.monotonic()
        process = subprocess.Popen(
            ["make", "serve", f"PORT={port}", f"INSTALLER={installer}"],
            cwd=clone,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            while not answered(f"http://127.0.0.1:{port}/samples/landscape.jpg?w=800"):
                if process.poll() is not None:
                    said = process.stderr.read().decode()[-2000:] if process.stderr else ""
                    raise RuntimeError(f"make serve exited {process.returncode}: {said}")
                if time.monotonic() - started > GIVE_UP_SECONDS:
                    raise RuntimeError(f"no answer in {GIVE_UP_SECONDS} s")
                time.sleep(0.5)
            seconds = time.monotonic() - started
        finally:
            os.killpg(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        venv = size_of(clone / ".venv")
        installer = "uv" if (clone / ".venv" / "bin" / "uv").exists() else "pip"
    return {"serve_seconds": round(seconds, 1), "venv_mb": round(venv / 1e6), "installer": installer}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.first_run", description=__doc__.splitlines()[0])
    parser.add_argument("--ref", help="measure this commit (git archive) rather than the checkout's files")
    ref = parser.parse_args(argv).ref
    result = measure(ref)
    result["pip"] = {key: value for key, value in measure(ref, "pip").items() if key != "installer"}
    RESULT.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(
        f"first make serve on a fresh copy, empty package caches: first image after {result['serve_seconds']} s, "
        f".venv {result['venv_mb']} MB ({result['installer']}); with pip alone {result['pip']['serve_seconds']} s, "
        f"{result['pip']['venv_mb']} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
