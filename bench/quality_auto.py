"""Calibrate `q=auto` (edge/imaging.py's TARGETS, START and SLOPE), then measure it.

    python -m bench.quality_auto            # the table to paste, and the checks of the issue's goal
    python -m bench.quality_auto --measure  # misses: latency and bytes, auto against fixed q

Targets are named after today's look: `high`, `good` and `low` are the median SSIMULACRA 2
scores (edge/perceptual.py) of today's WebP at q80, q60 and q40 at 320 px on the photos. For
each target and format, the quality that reaches it is found per photo and width (bisection on
the score); START is its median, SLOPE the median score points per quality step around it.
The goal checks: butteraugli's 90th percentile (libjxl's butteraugli_main, its distance map) of
AVIF at `good` against today's WebP q60 at 320 px, and the bytes against today's q60.
Not a test: it encodes a few hundred times (minutes, AVIF at 1280 px being most of it).
"""

from __future__ import annotations

import io
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from edge import imaging, perceptual
from localcdn import samples

WIDTHS = (320, 1280)
FORMATS = ("avif", "webp", "jpeg")
NAMED = {"high": 80, "good": 60, "low": 40}  # today's WebP quality each target matches at 320 px


def photos() -> dict[str, bytes]:
    """The real photos when present (sharp's benchmark photo, an upright EXIF sample) and generated ones."""
    found = {f"generated-{seed}": samples.jpeg(samples.photo(1600, 1200, seed=seed)) for seed in (1, 2, 3)}
    shared = samples.shared_images()
    for name in ("sharp-bench-2725x2225.jpg", "exif-orientation-landscape-1.jpg"):
        if shared is not None and (shared / name).is_file():
            found[name] = (shared / name).read_bytes()
    return found


def finished(data: bytes, width: int) -> Image.Image:
    """The pixels a variant of this width is encoded from (a lossless render)."""
    body, _ = imaging.transform(data, width=width, height=None, fit="cover", quality=90, fmt="png")
    return Image.open(io.BytesIO(body)).convert("RGB")


def encoded(image: Image.Image, quality: int, fmt: str) -> bytes:
    return imaging._encode([image.copy()], [], 0, quality, fmt)


def score(reference: perceptual.Reference, body: bytes) -> float:
    return reference.score(np.asarray(Image.open(io.BytesIO(body)).convert("RGB")))


def reaching(image: Image.Image, reference: perceptual.Reference, fmt: str, goal: float) -> tuple[int, float]:
    """The lowest quality whose score meets `goal` (bisection), and the local slope there."""
    low, high = 5, 98
    cache: dict[int, float] = {}

    def at(quality: int) -> float:
        if quality not in cache:
            cache[quality] = score(reference, encoded(image, quality, fmt))
        return cache[quality]

    while high - low > 1:
        middle = (low + high) // 2
        if at(middle) >= goal:
            high = middle
        else:
            low = middle
    above, below = min(98, high + 5), max(5, high - 5)
    slope = (at(above) - at(below)) / max(1, above - below)
    return high, slope


def butteraugli_p90(reference: Image.Image, body: bytes) -> float:
    """The 90th percentile of butteraugli's distance map (libjxl's butteraugli_main)."""
    with tempfile.TemporaryDirectory() as scratch:
        ref, dist, distmap = (Path(scratch) / name for name in ("ref.png", "dist.png", "map.pfm"))
        reference.save(ref)
        Image.open(io.BytesIO(body)).convert("RGB").save(dist)
        subprocess.run(
            ["butteraugli_main", str(ref), str(dist), "--distmap", str(distmap)], capture_output=True, check=True
        )
        raw = distmap.read_bytes()
        header_end = 0
        for _ in range(3):
            header_end = raw.index(b"\n", header_end) + 1
        values = np.frombuffer(raw[header_end:], dtype="<f4" if b"-" in raw[:header_end].split(b"\n")[2] else ">f4")
        return float(np.percentile(values, 90))


def calibrate() -> None:
    images = photos()
    prepared = {
        (name, width): (image, perceptual.Reference(np.asarray(image)))
        for name, data in images.items()
        for width in WIDTHS
        for image in [finished(data, width)]
    }
    targets = {
        target: round(
            statistics.median(
                score(reference, encoded(image, quality, "webp"))
                for (name, width), (image, reference) in prepared.items()
                if width == 320
            ),
            1,
        )
        for target, quality in NAMED.items()
    }
    print("TARGETS =", targets)
    start: dict[str, dict[str, int]] = {}
    slopes: dict[str, list[float]] = {fmt: [] for fmt in FORMATS}
    for target, goal in targets.items():
        start[target] = {}
        for fmt in FORMATS:
            found = [reaching(image, reference, fmt, goal) for image, reference in prepared.values()]
            start[target][fmt] = round(statistics.median(quality for quality, _ in found))
            slopes[fmt] += [slope for _, slope in found]
            print(f"  {target} {fmt}: qualities {sorted(q for q, _ in found)}", file=sys.stderr)
    print("START =", start)
    print("SLOPE =", {fmt: round(statistics.median(values), 2) for fmt, values in slopes.items()})


def goal() -> None:
    """The issue's goal at 320 px, with the constants now in edge/imaging.py."""
    rows = []
    for name, data in photos().items():
        image = finished(data, 320)
        today_webp = encoded(image, 60, "webp")
        today_avif = encoded(image, 60, "avif")
        chosen = {fmt: imaging.choose(image.copy(), fmt, "good") for fmt in FORMATS}
        rows.append(
            (
                name,
                butteraugli_p90(image, today_webp),
                butteraugli_p90(image, chosen["avif"].body),
                len(chosen["avif"].body) / len(today_avif),
                len(chosen["webp"].body) / len(today_webp),
                len(chosen["jpeg"].body) / len(encoded(image, 60, "jpeg")),
            )
        )
    print("photo  butteraugli-p90(webp q60)  p90(avif auto)  avif auto/q60 bytes  webp auto/q60  jpeg auto/q60")
    for row in rows:
        print(f"{row[0]}  {row[1]:.2f}  {row[2]:.2f}  {row[3]:.2f}  {row[4]:.2f}  {row[5]:.2f}")


def measure() -> None:
    """Miss latency (transform only, one process, warm) and bytes: auto against q60, per format and width."""
    for name, data in photos().items():
        for width in WIDTHS:
            for fmt in FORMATS:
                timings = {}
                sizes = {}
                for label, quality in (("q60", 60), ("auto", 0)):
                    started = time.perf_counter()
                    body, _ = imaging.transform(data, width=width, height=None, fit="cover", quality=quality, fmt=fmt)
                    timings[label] = time.perf_counter() - started
                    sizes[label] = len(body)
                print(
                    f"{name} {width} {fmt}: q60 {timings['q60'] * 1000:.0f} ms {sizes['q60']} B, "
                    f"auto {timings['auto'] * 1000:.0f} ms {sizes['auto']} B ({sizes['auto'] / sizes['q60'] - 1:+.0%})"
                )


if __name__ == "__main__":
    if "--measure" in sys.argv:
        measure()
    elif "--goal" in sys.argv:
        goal()
    else:
        calibrate()
        goal()
