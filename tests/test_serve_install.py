"""`make serve` installs requirements-serve.txt only: the service must run without what it leaves out."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What make serve never installs: the Pulumi SDK and providers, and the test, lint, type-check and
# benchmark tooling (requirements-dev.txt).
LEFT_OUT = ("pulumi", "pulumi_aws", "pulumi_random", "pytest", "hypothesis", "mypy", "numpy", "pyvips", "playwright")

# What a newcomer runs on the serve install: the emulator, and every operator command but `ops cost`
# (which reads the components' alarm definitions, and `make cost` installs everything).
MODULES = (
    "localcdn.__main__",
    "localcdn.server",
    "localcdn.catalog",
    "localcdn.distribution",
    "localcdn.signing",
    "localcdn.thumbor",
    "localcdn.gallery",
    "ops.__main__",
    "ops.sign",
    "ops.drill",
    "ops.catalog",
    "ops.sync",
    "sync.backfill",
)

BLOCKER = """
import importlib.abc, sys
left_out = set(sys.argv[1].split(","))
class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in left_out:
            raise ModuleNotFoundError(f"No module named {name!r} (not in requirements-serve.txt)")
        return None
sys.meta_path.insert(0, Blocked())
import importlib
for module in sys.argv[2:]:
    importlib.import_module(module)
print("ok")
"""


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[a-z,]+\])?==([^ #]+)", line.strip())
        if match:
            found[match.group(1).lower().replace("_", "-")] = match.group(3)
    return found


def test_the_emulator_and_the_operator_commands_load_without_what_make_serve_leaves_out() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, ",".join(LEFT_OUT), *MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_the_blocker_blocks() -> None:
    # The test above is only as good as its blocker: a module that needs pulumi fails under it.
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER, "pulumi", "components.signing"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode != 0 and "not in requirements-serve.txt" in done.stderr


def test_serve_pins_nothing_it_leaves_out_and_the_full_install_includes_it() -> None:
    serve = pins(ROOT / "requirements-serve.txt")
    assert not {name.replace("_", "-") for name in LEFT_OUT} & set(serve)
    full = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert "-r requirements-serve.txt" in full.splitlines()
    assert not set(pins(ROOT / "requirements.txt")) & set(serve)  # one pin per package
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^serve: \$\(BIN\)/\.serve", makefile, re.M)
    assert re.search(r"^\$\(BIN\)/\.serve: requirements-serve.txt", makefile, re.M)


def test_make_help_lists_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    phony = re.search(r"^\.PHONY: (.+)$", makefile, re.M)
    assert phony is not None
    shown = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    listed = {line.split()[1] for line in shown.stdout.splitlines() if line.startswith("make ")}
    assert listed == set(phony.group(1).split())


def test_a_q_auto_stack_on_the_serve_install_says_what_it_lacks() -> None:
    # q=auto's metric needs numpy, which make serve leaves out: the emulator says so and stops
    run = BLOCKER.replace("import importlib\nfor module", "import runpy\nsys.argv = sys.argv[2:]\nfor module").replace(
        '    importlib.import_module(module)\nprint("ok")',
        '    pass\nrunpy.run_module("localcdn", run_name="__main__")',
    )
    done = subprocess.run(
        [sys.executable, "-c", run, "numpy", "localcdn", "--port", "0", "--set", "qualityTarget=good"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert "needs numpy" in done.stderr and "pip install numpy" in done.stderr


def test_ctrl_c_while_the_virtualenv_is_made_is_one_line(tmp_path: Path) -> None:
    # venv and ensurepip each print a KeyboardInterrupt traceback when interrupted: make says one line
    for name in ("Makefile", "requirements-serve.txt", "requirements.txt", "requirements-dev.txt"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    make = subprocess.Popen(
        ["make", "--no-print-directory", ".venv/bin/.serve"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    python = tmp_path / ".venv" / "bin" / "python"
    while not python.exists() and make.poll() is None:  # the interpreter is there, pip is being installed
        time.sleep(0.05)
    os.killpg(make.pid, signal.SIGINT)
    out, _ = make.communicate(timeout=120)
    assert make.returncode != 0 and "Traceback" not in out, out
    assert "interrupted while creating .venv (Ctrl-C): run the command again" in out, out
