"""thumbor (a real open-source image service, PyPI `thumbor`) on loopback: a third-party primary
(`primaryOrigin` kind http) locally, behind `make serve ORIGIN=thumbor` and `make drill
ORIGIN=thumbor`. It runs from its own virtualenv (`make thumbor` makes `.thumbor/`: thumbor pins
a Pillow older than ours), reads originals from a folder (its file loader) and refuses any URL
not signed with its key (ALLOW_UNSAFE_URL off), as a production thumbor should.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from edge.settings import Settings
from localcdn.process import ROOT, free_port

CONFIG = """LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {root!r}
SECURITY_KEY = {key!r}
ALLOW_UNSAFE_URL = False
AUTO_WEBP = False
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = 'thumbor.result_storages.no_storage'
"""


def executable() -> Path | None:
    """thumbor's command: IMAGE_CDN_THUMBOR, else `.thumbor/bin/thumbor` from `make thumbor`."""
    configured = os.environ.get("IMAGE_CDN_THUMBOR")
    path = Path(configured) if configured else ROOT / ".thumbor" / "bin" / "thumbor"
    return path if path.is_file() else None


class LocalThumbor:
    """`with LocalThumbor(folder, key) as thumbor:` thumbor on 127.0.0.1:<free port>, stopped on exit."""

    def __init__(self, originals: Path, key: str, port: int = 0):
        command = executable()
        if command is None:
            raise FileNotFoundError("no thumbor: run `make thumbor` (or set IMAGE_CDN_THUMBOR)")
        self.key = key
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._home = Path(tempfile.mkdtemp(prefix="thumbor-"))
        self.process: subprocess.Popen[bytes] | None = None
        try:
            self._start(command, originals, key)
        except BaseException:  # Ctrl-C included: no process and no folder left behind
            self.stop()
            raise

    def _start(self, command: Path, originals: Path, key: str) -> None:
        conf = self._home / "thumbor.conf"
        conf.write_text(CONFIG.format(root=str(originals), key=key))
        self.process = subprocess.Popen(
            [str(command), "-i", "127.0.0.1", "-p", str(self.port), "-c", str(conf), "-l", "warning"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.base + "/healthcheck", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        raise RuntimeError("thumbor did not answer /healthcheck in 30 s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> LocalThumbor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


# The host name the emulated distribution knows the service by (on AWS: primaryOrigin.domain).
DOMAIN = "thumbor.localhost"


class ThumborPrimary:
    """The emulator's third-party primary: a thumbor, its originals folder and its signing key.

    Originals stored in the local S3 are mirrored into the folder thumbor's file loader reads
    (as a team's service reads its own storage). `kill()` stops the process (connections are
    refused, as with a service that is down) and `start()` runs it again on the same port.
    The key is made per run, as Secrets Manager would hold it; nothing stores it.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="thumbor-originals-"))
        self.key = secrets.token_urlsafe(24)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.service: LocalThumbor | None = None
        try:
            self.start()
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def settings(self, settings: Settings) -> Settings:
        """The stack's settings with this thumbor as the primary origin (templates: thumbor)."""
        values = settings.as_dict() | {
            "primary_kind": "http",
            "primary_template": "thumbor",
            "primary_domain": DOMAIN,
            "service_key": self.key,
            # Our renderer's features that a third-party primary does not have (the config refuses them).
            "watermark": "",
            "default_image": "",
        }
        return Settings(**values)

    def start(self) -> None:
        if self.service is None:
            self.service = LocalThumbor(self.folder, self.key, port=self.port)

    def kill(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def control(self, state: str) -> None:
        """What the emulator's `PUT /_localcdn/primary` does to the real process."""
        if state == "down":
            self.kill()
        else:
            self.start()

    def mirror(self, key: str, data: bytes | None) -> None:
        """An original stored (bytes) or deleted (None) in the primary bucket, seen by thumbor."""
        path = self.folder / key
        if data is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.folder, ignore_errors=True)
