"""Code bundles for the functions: deterministic, cached, size-checked.

The same inputs give a byte-identical archive (sorted entries, fixed timestamps and
permissions), so `pulumi preview` shows no diff for code that did not change. A
function's bundle carries the project modules its handler imports, directly or not
(`modules`), and nothing else of the project, with a `config.json` generated from the
stack config beside `edge/settings.py`; pinned wheels (Pillow and pillow-heif:
the Lambda builds, manylinux for the runtime's Python and the function's
architecture; numpy for `q=auto`; pillow-jxl-plugin for JPEG XL) are vendored only where
they are used. Archives and the vendored wheels are cached under `.cache/`.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import io
import json
import modulefinder
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import rjsmin

from edge.settings import AUTO, Settings

if TYPE_CHECKING:  # the program's; the emulator reads the viewer function's code without the Pulumi SDK
    import pulumi

ROOT = Path(__file__).resolve().parents[1]
EDGE = ROOT / "edge"
CACHE = ROOT / ".cache"

LAMBDA_PYTHON = "3.13"
LAMBDA_RUNTIME = "python3.13"
PILLOW = "pillow==13.0.0"
# What the functions that decode images carry: Pillow, and pillow-heif for what phones upload.
IMAGING = (PILLOW, "pillow-heif==1.8.1")
# What `q=auto` scores encodes with (edge/perceptual.py: SSIMULACRA 2 in numpy, not PyPI's
# ssimulacra2, whose scipy would take the bundle past Lambda@Edge's 50 MB). Imported only on an auto miss.
NUMPY = "numpy==2.4.6"
# Modules that run only with a wheel a stack may go without: a bundle carries one only with its
# wheel. q=auto's metric is imported only on an auto miss, which a stack without numpy refuses
# (rewrite answers 400), so without numpy it is code that could only fail.
NEEDS_WHEEL = {"edge/perceptual.py": NUMPY}
# What resize reaches S3 with on a miss (edge/s3.py says why not boto3, which the runtime has).
OBSTORE = "obstore==0.12.1"
RESIZE = (*IMAGING, OBSTORE)
# The JPEG XL encoder (libjxl, through Rust's jpegxl-rs) for a stack whose `formats` lists jxl: a
# Pillow plugin with manylinux2014 wheels for every CPython the runtimes run, on x86_64 and aarch64;
# about 2.5 MB zipped. Its one dependency beyond Pillow, `packaging`, is pure Python.
JXL = ("pillow-jxl-plugin==1.3.8", "packaging==26.4")


# What the catalogue's metadata function adds: the placeholder's encoder.
BLURHASH = "blurhash==1.1.5"
METADATA = (*IMAGING, BLURHASH)


def resize_wheels(settings: Settings) -> tuple[str, ...]:
    """What resize carries: numpy only for a stack that serves `q=auto` (the size it adds to
    every cold start is in BENCHMARKS.md, "Footprint"), the JPEG XL encoder only for one that serves jxl."""
    wheels = (*IMAGING, NUMPY, OBSTORE) if settings.quality_auto else RESIZE
    return (*wheels, *JXL) if "jxl" in settings.formats else wheels


def sync_wheels(settings: Settings) -> tuple[str, ...]:
    """What the sync job carries: numpy when it renders the standard set at `q=auto`, the JPEG XL
    encoder when the standard set holds jxl."""
    wheels = (*IMAGING, NUMPY) if settings.default_quality == AUTO else IMAGING
    return (*wheels, *JXL) if "jxl" in settings.standard_formats else wheels


PLATFORMS = {"x86_64": "manylinux_2_28_x86_64", "arm64": "manylinux_2_28_aarch64"}
# Older manylinux tags the runtime also runs (Amazon Linux 2023, glibc 2.34): pip matches a
# --platform exactly, and obstore publishes manylinux2014 (glibc 2.17) wheels only.
OLDER_PLATFORMS = {"x86_64": ("manylinux2014_x86_64",), "arm64": ("manylinux2014_aarch64",)}

# "Quotas on Lambda@Edge" (Quotas, CloudFront Developer Guide): the compressed size of an origin
# event's function, "50 MB"; and Lambda's own quota on unzipped code, "250 MB". Every bundle is held
# to both, each read as the smaller of its two meanings (10^6 bytes a MB), as the viewer function's below.
MAX_ZIPPED_BYTES = 50_000_000
MAX_UNZIPPED_BYTES = 250_000_000
# CloudFront Functions' size quota is "10 KB" ("Quotas", CloudFront Developer Guide), which does not
# say whether a KB is 1,000 or 1,024 bytes: the function must fit the smaller.
VIEWER_FUNCTION_LIMIT = 10_000

KVS_IMPORT = "import cf from 'cloudfront';"
_CONFIG_LINE = re.compile(r"^var CONFIG = .*;$", re.MULTILINE)
_CONFIG_SLOT = "__IMAGE_CDN_CONFIG__"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


class BundleError(RuntimeError):
    """A bundle that cannot be built or would not be accepted by AWS."""


# Each function's handler, Lambda's `handler` setting (the components pass these): its bundle
# carries the modules that handler's module imports and nothing else of the project.
HANDLERS = {
    "rewrite": "edge.rewrite.handler",
    "resize": "edge.resize.handler",
    "sync": "sync.job.handler",
    "catalog-metadata": "catalog.ingest.handler",
    "catalog-api": "catalog.api.handler",
    "alarm-relay": "alerts.relay.handler",
}


def handler(function: str) -> str:
    """`function`'s handler (HANDLERS); BundleError for a function this project does not have."""
    if function not in HANDLERS:
        raise BundleError(f"no function {function!r}: expected one of {', '.join(sorted(HANDLERS))}")
    return HANDLERS[function]


def modules(handler: str) -> dict[str, Path]:
    """The project's modules a handler ("edge.rewrite.handler") runs with: its module, what that
    imports, directly or not, and every package around them ({"edge.rewrite": path, ...}).

    The standard library's `modulefinder` reads the compiled code's import instructions, the lazy
    ones inside functions included; its search path is the repository alone, so it finds the
    project's packages and follows no other (the standard library, the runtime's boto3 and the
    vendored wheels are not ours to list). tests/test_bundle_modules.py checks it against a walk of
    the source's import statements."""
    finder = modulefinder.ModuleFinder(path=[str(ROOT)])
    try:
        finder.import_hook(handler.rpartition(".")[0])
    except (ImportError, SyntaxError, AttributeError) as error:
        # modulefinder's own failures, e.g. an import of a folder without __init__.py (AttributeError)
        raise BundleError(f"cannot follow the imports of {handler}: {type(error).__name__}: {error}") from error
    # A module of one of our folders that is not there: an ImportError on AWS, said now.
    ours = {path.name for path in ROOT.iterdir() if path.is_dir() and not path.name.startswith(".")}
    missing = sorted(name for name in finder.badmodules if name.split(".")[0] in ours)
    if missing:
        raise BundleError(f"cannot follow the imports of {handler}: no module {', '.join(missing)} in the repository")
    found: dict[str, Path] = {}
    for name, module in finder.modules.items():
        file: str | None = getattr(module, "__file__", None)  # a built-in module has none
        if file is not None and Path(file).resolve().is_relative_to(ROOT.resolve()):
            found[name] = Path(file)
    return dict(sorted(found.items()))


def viewer_code(settings: Settings) -> str:
    """normalize.js as deployed: the stack's config inlined, the KeyValueStore import only when
    signing is on (the store is associated only then), comments and whitespace removed;
    checked against the 10 KB limit."""
    source = (EDGE / "normalize.js").read_text()
    # The config goes in last, after the code is minified and renamed: a preset named `C` or
    # `CONFIG` is data, never touched by either.
    code, count = _CONFIG_LINE.subn(lambda _: f"var CONFIG = {_CONFIG_SLOT};", source)
    if count != 1:
        raise BundleError("edge/normalize.js must contain exactly one 'var CONFIG = ...;' line")
    if code.count(KVS_IMPORT) != 1:
        raise BundleError(f"edge/normalize.js must contain exactly one {KVS_IMPORT!r} line")
    if settings.signing == "off":
        code = code.replace(KVS_IMPORT + "\n", "")
    # Comments and whitespace are a quarter of the source: the limit counts them, V8 does not.
    # rjsmin removes only those (no renaming), so what runs is the code as written, with one
    # exception: the config object, named 26 times, is renamed `C` (160 bytes; a whole-word rename
    # of a name the code declares once, checked not to clash). Every test runs this code.
    code = str(rjsmin.jsmin(code))
    if re.search(r"\bC\b", code):
        raise BundleError("edge/normalize.js uses the name C, which the deployed code gives CONFIG")
    code = re.sub(r"\bCONFIG\b", "C", code)
    code = code.replace(_CONFIG_SLOT, json.dumps(settings.viewer_config(), separators=(",", ":")), 1)
    size = len(code.encode("utf-8"))
    if size > VIEWER_FUNCTION_LIMIT:
        raise BundleError(f"viewer function is {size} bytes; CloudFront Functions take at most {VIEWER_FUNCTION_LIMIT}")
    return code


def _module_files(function: str) -> dict[str, bytes]:
    """The project's modules `function`'s handler imports, by their paths in the archive."""
    return {path.relative_to(ROOT).as_posix(): path.read_bytes() for path in modules(handler(function)).values()}


def vendored(requirements: tuple[str, ...], architecture: str = "x86_64") -> Path:
    """Pinned packages' Lambda wheels, unpacked once into `.cache/vendor/` (pip, PyPI, no dependencies)."""
    digest = hashlib.sha256("\n".join(sorted(requirements)).encode()).hexdigest()[:12]
    target = CACHE / "vendor" / f"{digest}-cp{LAMBDA_PYTHON.replace('.', '')}-{PLATFORMS[architecture]}"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Test workers (pytest-xdist) and parallel builds ask for the same wheels at once: one fetches
    # while the others wait on the lock, then find the directory in place.
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.is_dir():
            _fetch(requirements, architecture, target)
    return target


def _fetch(requirements: tuple[str, ...], architecture: str, target: Path) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent) as scratch:
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-compile",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            PLATFORMS[architecture],
            *(flag for tag in OLDER_PLATFORMS[architecture] for flag in ("--platform", tag)),
            "--implementation",
            "cp",
            "--python-version",
            LAMBDA_PYTHON,
            "--target",
            scratch,
            *sorted(requirements),
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BundleError(f"could not fetch {', '.join(requirements)} for Lambda: {result.stderr.strip()[-2000:]}")
        Path(scratch).rename(target)


def _vendored_files(directory: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.is_file() and "__pycache__" not in relative and not relative.startswith("bin/"):
            files[relative] = path.read_bytes()
    return files


def archive(files: dict[str, bytes]) -> bytes:
    """A zip whose bytes depend only on the names and contents given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zipped:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = (0o100755 if name.endswith(".so") or ".so." in name else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            zipped.writestr(info, files[name], compresslevel=9)
    return buffer.getvalue()


def build(function: str, settings: Settings, *, vendor: tuple[str, ...] = (), architecture: str = "x86_64") -> Path:
    """The archive for one function (a name in HANDLERS), built or taken from the cache: the
    modules its handler imports (less NEEDS_WHEEL's without their wheel), the stack's config as
    `edge/config.json` (read by `edge.settings.bundled`, which every function built here imports;
    the alarm relay, which needs none, is `plain`), and the pinned `vendor` wheels (e.g. IMAGING)
    for the function's architecture."""
    files = _module_files(function)
    for module, wheel in NEEDS_WHEEL.items():
        if wheel not in vendor:
            files.pop(module, None)
    files["edge/config.json"] = (settings.to_json() + "\n").encode()
    if vendor:
        files.update(_vendored_files(vendored(vendor, architecture)))
    unzipped = sum(len(data) for data in files.values())
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    path = CACHE / "bundles" / f"{function}-{digest.hexdigest()[:20]}.zip"
    if not path.exists():
        data = archive(files)
        if len(data) > MAX_ZIPPED_BYTES or unzipped > MAX_UNZIPPED_BYTES:
            raise BundleError(
                f"{function} bundle is {len(data)} bytes zipped, {unzipped} unzipped; "
                f"limits are {MAX_ZIPPED_BYTES} and {MAX_UNZIPPED_BYTES}"
            )
        _store(path, data)
    return path


def _store(path: Path, data: bytes) -> None:
    """Writes a cached archive whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name of its own per writer: parallel workers building the same archive must not
    # write into one another's partial file.
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".partial", delete=False) as partial:
        partial.write(data)
    Path(partial.name).replace(path)


def plain(function: str) -> Path:
    """The archive of the modules `function`'s handler imports alone (no config.json, no wheels),
    cached like `build`'s: for a function that needs nothing else, such as the alarm relay (`alerts/`)."""
    data = archive(_module_files(function))
    path = CACHE / "bundles" / f"{function}-{hashlib.sha256(data).hexdigest()[:20]}.zip"
    if not path.exists():
        _store(path, data)
    return path


def keyed_archive(key: pulumi.Input[str] | None, make: Callable[[str], Path]) -> pulumi.Output[Path]:
    import pulumi

    """The archive `make(key)` builds once a signing secret resolves (`make("")` without one).

    The key is baked into that one bundle's config.json (Lambda@Edge has no environment and no
    secret lookup fast enough for a miss); the archive's path and hash are not secret, so the
    Output is unsecreted, and the key itself never appears in the program's state outside it.
    """
    if key is None:
        return pulumi.Output.from_input(make(""))
    return pulumi.Output.unsecret(pulumi.Output.from_input(key).apply(make))


def source_hash(path: Path) -> str:
    """Lambda's `source_code_hash`: base64 of the archive's SHA-256."""
    return base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
