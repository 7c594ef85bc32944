"""Function bundles: deterministic, cached, self-contained, within Lambda@Edge's limits."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from components import bundle
from edge.settings import Settings

SETTINGS = Settings(primary_bucket="b-origin", fallback_bucket="b-fallback")


def names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def test_the_same_inputs_give_a_byte_identical_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = bundle.build("rewrite", SETTINGS).read_bytes()
    monkeypatch.setattr(bundle, "CACHE", tmp_path)  # a cold cache builds it again from scratch
    rebuilt = bundle.build("rewrite", SETTINGS)
    assert rebuilt.parent == tmp_path / "bundles"
    assert rebuilt.read_bytes() == first
    assert bundle.source_hash(rebuilt) == bundle.source_hash(bundle.build("rewrite", SETTINGS))


def test_a_cached_archive_is_reused_and_any_change_makes_a_new_one() -> None:
    path = bundle.build("rewrite", SETTINGS)
    written = path.stat().st_mtime_ns
    assert bundle.build("rewrite", SETTINGS) == path
    assert path.stat().st_mtime_ns == written
    other = bundle.build("rewrite", Settings(primary_bucket="other-origin"))
    assert other != path


def test_the_archive_carries_the_edge_package_and_its_generated_config() -> None:
    path = bundle.build("rewrite", SETTINGS)
    entries = names(path)
    assert "edge/rewrite.py" in entries and "edge/variants.py" in entries
    assert not any(name.startswith(("components/", "localcdn/", "tests/")) or "__pycache__" in name for name in entries)
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("edge/config.json"))
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in archive.infolist())
    assert Settings.from_dict(config) == SETTINGS
    assert not any(name.startswith("PIL/") for name in entries)  # rewrite needs no Pillow


@pytest.mark.parametrize(("architecture", "tag"), [("x86_64", "x86_64-linux-gnu"), ("arm64", "aarch64-linux-gnu")])
def test_pillow_is_vendored_for_the_lambda_platform(architecture: str, tag: str) -> None:
    path = bundle.build("resize", SETTINGS, vendor=bundle.IMAGING, architecture=architecture)
    entries = names(path)
    extensions = [name for name in entries if name.startswith("PIL/_imaging.cpython-313")]
    assert extensions and all(tag in name for name in extensions)
    assert any(name.startswith("PIL/_avif.") for name in entries)
    heif = [name for name in entries if name.startswith("_pillow_heif.cpython-313")]
    assert heif and all(tag in name for name in heif)  # what phones upload
    assert path.stat().st_size < bundle.MAX_ZIPPED_BYTES


def test_resize_carries_obstore_for_lambda_and_reaches_s3_with_it_alone(tmp_path: Path) -> None:
    """The bundle's own obstore (abi3, so this interpreter loads it too), with no site-packages."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    path = bundle.build("resize", SETTINGS, vendor=bundle.RESIZE)
    entries = names(path)
    assert "edge/s3.py" in entries and "obstore/_obstore.abi3.so" in entries
    assert path.stat().st_size < bundle.MAX_ZIPPED_BYTES
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path)
        assert archive.read("obstore/_obstore.abi3.so")[:4] == b"\x7fELF"

    class Original(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "6")
            self.end_headers()
            self.wfile.write(b"pixels")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Original)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    code = (
        "import os, obstore; from edge import s3; assert obstore.__file__.startswith(os.getcwd()); "
        "print(s3.Client('eu-west-1').get_object(Bucket='b', Key='originals/a.jpg')['Body'].read().decode())"
    )
    env = {
        "AWS_ACCESS_KEY_ID": "ASIABUNDLE",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_SESSION_TOKEN": "token",
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{server.server_address[1]}",
    }
    try:
        result = subprocess.run(
            [sys.executable, "-S", "-E", "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env
        )
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "pixels"


def test_an_oversized_viewer_function_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle, "VIEWER_FUNCTION_LIMIT", 1000)
    with pytest.raises(bundle.BundleError, match="at most 1000"):
        bundle.viewer_code(SETTINGS)


def test_an_oversized_bundle_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bundle, "CACHE", tmp_path)
    monkeypatch.setattr(bundle, "MAX_ZIPPED_BYTES", 1000)
    with pytest.raises(bundle.BundleError, match="limits are 1000"):
        bundle.build("rewrite", SETTINGS)


def test_workers_vendoring_the_same_wheels_at_once_fetch_them_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-xdist workers build the stack at the same moment; a fresh clone's CI once failed with
    `Directory not empty` when both renamed their download onto the same cache directory."""
    monkeypatch.setattr(bundle, "CACHE", tmp_path)
    together = threading.Barrier(2)
    fetches: list[str] = []

    def fake_pip(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        fetches.append(command[-1])
        # Without the lock both workers reach here together; with it the second never does.
        with contextlib.suppress(threading.BrokenBarrierError):
            together.wait(timeout=1)
        target = Path(command[command.index("--target") + 1])
        (target / "PIL").mkdir()
        (target / "PIL" / "__init__.py").write_text("")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_pip)
    results: list[Path] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(bundle.vendored(("pillow==0",), "arm64"))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 2 and results[0] == results[1]
    assert fetches == ["pillow==0"]
    assert (results[0] / "PIL" / "__init__.py").is_file()


def test_a_preset_named_like_the_config_object_is_data_in_the_deployed_viewer_function() -> None:
    named = Settings(presets=(("C", 160, 160, 60, "cover", "center"), ("CONFIG", 320, None, 60, "cover", "center")))
    code = bundle.viewer_code(named)
    assert '"presets":{"C":[160,160,60,"cover","center"],"CONFIG":[320,null,60,"cover","center"]}' in code
    assert "CONFIG" not in code.replace('"CONFIG":', "")  # the code's own name is C; the preset keeps its name
