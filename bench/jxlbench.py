"""JPEG XL beside AVIF and WebP at the same look, and what its encoder costs to load.

Part of `make bench` ("jxl"): for sharp's benchmark photo (or its generated stand-in) and a
generated photo at 320 and 1280 px, the bytes `q=auto` (`good`) settles on in AVIF, JPEG XL
and WebP (each format's own calibrated score for the same butteraugli look, edge/imaging.py);
and the median time of importing the encoder (pillow_jxl) in a fresh interpreter, which the
first JPEG XL miss of a container pays. The README quotes these through `bench/figures.py`.
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
from typing import Any

from bench import inputs

FORMATS = ("avif", "jxl", "webp")
WIDTHS = (320, 1280)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def same_look() -> list[dict[str, Any]]:
    from PIL import Image

    from edge import imaging
    from localcdn import samples

    photo, source = inputs.sharp_photo()
    generated = samples.jpeg(samples.photo(1600, 1200, seed=7), quality=90)
    rows = []
    for label, data in ((source, photo.read_bytes()), ("generated 1600x1200 photo", generated)):
        for width in WIDTHS:
            png, _ = imaging.transform(data, width=width, height=None, fit="cover", quality=90, fmt="png")
            resized = Image.open(io.BytesIO(png)).convert("RGB")
            sizes = {fmt: len(imaging.choose(resized, fmt, "good").body) for fmt in FORMATS}
            rows.append({"input": label, "width": width, "bytes": sizes})
    return rows


def import_ms(runs: int = 7) -> float:
    """Median ms to import the JPEG XL plugin in a fresh interpreter (beside Pillow, already loaded)."""
    code = "import time, PIL.Image; t = time.perf_counter(); import pillow_jxl; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]
    return round(statistics.median(times) * 1000, 1)


def run() -> dict[str, Any]:
    log("jxl: bytes at the same look beside AVIF and WebP, the encoder's import ...")
    return {"same_look": same_look(), "import_ms": import_ms()}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
