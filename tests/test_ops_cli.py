"""The operator commands as a newcomer meets them: a mistake or a missing prerequisite is a line or
two on stderr and a non-zero exit, never a traceback; `--help` exits 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def no_aws(home: Path) -> dict[str, str]:
    """An environment with no AWS credentials anywhere boto3 looks (and no instance metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="eu-west-1",
    )
    return env


def ops(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ops", *args],
        cwd=ROOT,
        env=no_aws(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed when this returns: nothing listens there


def test_no_command_is_a_usage_mistake_with_the_list_on_stderr(tmp_path: Path) -> None:
    done = ops(home=tmp_path)
    assert done.returncode == 2 and done.stdout == "" and "\n  cost" in done.stderr


def test_help_lists_every_command_and_exits_0(tmp_path: Path) -> None:
    assert ops("help", home=tmp_path).stdout == ops("--help", home=tmp_path).stdout
    done = ops("--help", home=tmp_path)
    assert done.returncode == 0 and done.stderr == ""
    for name in ("sync", "drill", "upload", "images", "sign", "cost"):
        assert f"\n  {name}" in done.stdout
    for name in ("sync", "drill", "upload", "images", "sign", "cost"):
        one = ops(name, "--help", home=tmp_path)
        assert one.returncode == 0 and "exit status" in one.stdout, (name, one.stderr)


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["nope"], 2, "unknown command 'nope'"),
        (["sgin"], 2, "unknown command 'sgin': did you mean 'sign'?"),
        (["upload", ".", "--stack", "dev", "--tags", "a b"], 2, "for --tags"),
        (["upload", ".", "--stack", "dev", "--api", "http://127.0.0.1:9/"], 2, "is not the emulator's catalogue API"),
        (["images", "--stack", "dev"], 1, "no AWS credentials found"),
        (["upload", "--stack", "dev", "."], 1, "no AWS credentials found"),
        (["sync", "--stack", "dev"], 1, "no AWS credentials found"),
        (["sign", "--stack", "prod", "/a.jpg?w=100"], 1, "no AWS credentials found"),
        (["cost", "--stack", "nope"], 2, "no stack nope: there is no Pulumi.nope.yaml"),
        (["cost", "--stack", "dev", "--traffic", "missing.yaml"], 2, "--traffic missing.yaml: No such file"),
        (["sign", "--stack", "prod", "not a url"], 2, "is not a URL to sign"),
        (["sign", "--stack", "prod", "/a.jpg", "--expires-in", "soon"], 2, "--expires-in"),
        (["cost", "--stack", "dev", "--bogus"], 2, "unrecognized arguments: --bogus"),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else None,
)
def test_a_mistake_or_missing_prerequisite_is_a_line_or_two_and_no_traceback(
    tmp_path: Path, args: list[str], status: int, says: str
) -> None:
    done = ops(*args, home=tmp_path)
    assert done.returncode == status, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and says in lines[0], done.stderr


def test_an_upload_to_an_api_with_nothing_listening_is_one_line_not_one_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.png"):
        (folder / name).write_bytes(b"not read: the API is not there")
    url = f"http://127.0.0.1:{closed_port()}/api"
    done = ops("upload", str(folder), "--stack", "dev", "--api", url, home=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-2].startswith(f"ops upload: cannot reach {url}") and "connection refused" in lines[-2]
    assert lines[-1] == "  is it running (make serve starts the emulator)? or check --api"
    assert "Max retries" not in done.stdout + done.stderr


def test_a_url_with_nothing_listening_is_one_line_and_a_hint(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    done = ops("drill", "--url", url, home=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"ops drill: cannot reach {url}: connection refused",
        "  is it running (make serve starts the emulator)? or check --url",
    ]


def test_ctrl_c_is_one_line_and_exit_130(tmp_path: Path) -> None:
    # A server that takes the connection and never answers: the command is inside its work, waiting.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(60)
        port = server.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "ops", "drill", "--url", f"http://127.0.0.1:{port}"],
            cwd=ROOT,
            env=no_aws(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        connection, _ = server.accept()  # it has started and is waiting on us
        with connection:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines() == ["ops drill: interrupted (Ctrl-C)"]


@pytest.mark.parametrize("origin", ["s3", "thumbor"])
def test_ctrl_c_while_the_emulator_starts_stops_it_cleanly(tmp_path: Path, origin: str) -> None:
    from localcdn import samples, thumbor

    if origin == "thumbor" and thumbor.executable() is None:
        pytest.fail("thumbor is not installed: make unit installs it (make thumbor)")
    # Enough originals that the start-up's uploads (each builds its standard set) are still running.
    folder = tmp_path / "originals"
    folder.mkdir()
    for index in range(24):
        (folder / f"photo-{index}.jpg").write_bytes(samples.jpeg(samples.photo(1600, 1200, seed=index)))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "localcdn", "--port", "0", "--quiet", "--origin", origin, "--originals", str(folder)],
        cwd=ROOT,
        env={**no_aws(tmp_path), "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "uploading" in line:
            break
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert (
        "Traceback" not in err
        and err.strip().splitlines()[-1] == "localcdn: interrupted while starting (Ctrl-C): stopped"
    )
    assert [path.name for path in scratch.iterdir() if path.name.startswith("thumbor")] == []


def test_a_command_needing_what_make_serve_leaves_out_says_so(tmp_path: Path) -> None:
    # ops cost reads the components' alarm definitions (the Pulumi SDK), which make serve does not install.
    blocker = (
        "import importlib.abc, sys\n"
        "class B(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] == 'pulumi': raise ModuleNotFoundError(name=name)\n"
        "sys.meta_path.insert(0, B())\n"
        "import runpy; sys.argv = ['ops', 'cost', '--stack', 'dev']; runpy.run_module('ops', run_name='__main__')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", blocker], cwd=ROOT, env=no_aws(tmp_path), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        "ops cost: this command needs the Pulumi SDK (pulumi), which make serve does not install",
        "  run make cost (or make test) once: it installs everything",
    ]


@pytest.mark.parametrize(
    ("setting", "hint"),
    [
        (["--set", "widths=400,800"], "  a list is written as JSON: --set 'widths=[400,800]'"),
        (
            [
                "--set",
                "catalogAuth=jwt",
                "--set",
                "catalogJwtIssuer=https://a.example",
                "--set",
                "catalogJwtAudiences=app",
            ],
            """  a list is written as JSON: --set 'catalogJwtAudiences=["app"]'""",
        ),
    ],
)
def test_a_list_given_bare_to_the_emulator_gets_its_json_form(tmp_path: Path, setting: list[str], hint: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "localcdn", "--port", "0", *setting],
        cwd=ROOT,
        env=no_aws(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(lines) == 3 and lines[-1] == hint  # what is wrong (one problem), then how to write it
