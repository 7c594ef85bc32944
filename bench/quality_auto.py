"""`q=auto` against fixed qualities and sharp, scored by libjxl's own tools; and its calibration.

    python -m bench --only quality_auto       # the section of make bench (results.json, BENCHMARKS.md)
    python -m bench.quality_calibrate         # the grid behind edge/imaging.py's AUTO table, printed

The corpus: the real photos of ../shared/images (sharp's benchmark photo whole and seven crops of
it, the landscape photo whole and one crop; when present) and three generated photos, each
rendered to a 320 px variant as resize renders it (a lossless PNG: the pixels every encode is
judged against). Per format, each image is encoded at today's q=60, at `q=auto` for each target,
with sharp's defaults and with sharp at a sweep of qualities (bench/sharp_quality.js, on the same
PNG), and each encode is scored by tools that are not ours: libjxl's `butteraugli_main` (its
max distance, the score the issue's baseline table uses: per image one number, then the median
and the 90th percentile across images; its 3-norm beside it) and `ssimulacra_main` (the first
SSIMULACRA, a distance: lower is better). "sharp at the same look" is the lowest quality of the
sweep whose butteraugli p90 is no worse than auto's, and its bytes. bench/results.json keeps the
summaries; every photo's scores go to .cache/quality-auto-per-image.json (`summarize` reads them).

The calibration (bench/quality_calibrate.py) encodes the calibration images (not the held-out ones) at a
grid of qualities and prints, per format and target, the SSIMULACRA 2 score at which that format
looks as good to butteraugli as today's WebP at the target's quality (`NAMED`), the quality to
start from, the slope and the ceiling (the quality whose median bytes stay within the target's
budget against today's q=60): the table in edge/imaging.py. The held-out images show whether it
carries over.

Misses: decode, resize and encode from the original's bytes (`imaging.transform`, one process,
warm, rounds interleaved) at q=60 and at auto (`good`), per format and width, median of rounds.
The S3 download and upload of a real miss are the same for both and are left out, so the ratio
shown is an upper bound of the whole miss's.
"""

from __future__ import annotations

import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edge import imaging, perceptual
from edge.settings import AUTO, QUALITY_TARGETS, Settings
from localcdn import samples

BENCH = Path(__file__).resolve().parent
PER_IMAGE = BENCH.parent / ".cache" / "quality-auto-per-image.json"
WIDTH = 320
FORMATS = ("avif", "webp", "jpeg")
NAMED = {"high": 80, "good": 60, "low": 40}  # today's WebP quality whose look each target is
# Held out of the calibration: the table is made without them, and the bench reports them apart.
HELD_OUT = ("sharp-crop4", "sharp-crop5", "landscape-crop", "generated-3")
SHARP_SWEEP = {"avif": [30, 40, 50, 60, 70], "webp": [50, 60, 70, 80, 90], "jpeg": [50, 60, 70, 80, 90]}
# What a stack serves today without auto: the default `qualities` (the config's default, read from
# where the config reads it).
TODAY_QUALITIES = Settings().qualities
MISS_WIDTHS = (320, 640)
MISS_ROUNDS = 3
GRID = {"avif": range(14, 70, 4), "webp": range(30, 91, 5), "jpeg": range(30, 91, 5)}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def sources() -> dict[str, Image.Image]:
    """The corpus's sources (before resizing): the real photos when present, and generated ones."""
    found: dict[str, Image.Image] = {}
    shared = samples.shared_images()
    if shared is not None and (shared / "sharp-bench-2725x2225.jpg").is_file():
        big = Image.open(shared / "sharp-bench-2725x2225.jpg").convert("RGB")
        found["sharp"] = big
        corners = [(0, 0), (1700, 0), (0, 1400), (1700, 1400), (850, 700), (400, 900), (1200, 300)]
        for index, (left, top) in enumerate(corners):
            found[f"sharp-crop{index}"] = big.crop((left, top, left + 1000, top + 800))
    if shared is not None and (shared / "exif-orientation-landscape-1.jpg").is_file():
        landscape = Image.open(shared / "exif-orientation-landscape-1.jpg").convert("RGB")
        found["landscape"] = landscape
        found["landscape-crop"] = landscape.crop((100, 80, 500, 380))
    for seed in (1, 2, 3):
        found[f"generated-{seed}"] = samples.photo(1600, 1200, seed=seed)
    return found


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def finished(data: bytes, width: int = WIDTH) -> Image.Image:
    """The pixels a variant of this width is encoded from (resize's own render, lossless)."""
    body, _ = imaging.transform(data, width=width, height=None, fit="cover", quality=90, fmt="png")
    return Image.open(io.BytesIO(body)).convert("RGB")


def corpus() -> dict[str, Image.Image]:
    return {name: finished(png(image)) for name, image in sources().items()}


def encoded(image: Image.Image, quality: int, fmt: str) -> bytes:
    return imaging._encode([image.copy()], [], 0, quality, fmt)


class Judge:
    """libjxl's tools on one reference image: butteraugli (max, 3-norm) and SSIMULACRA (v1)."""

    def __init__(self, reference: Image.Image, scratch: Path, name: str) -> None:
        self.path = scratch / f"{name}.png"
        reference.save(self.path)
        self.scratch = scratch
        self.pixels = reference.width * reference.height
        self.ours = perceptual.Reference(np.asarray(reference))

    def __call__(self, body: bytes) -> dict[str, float]:
        decoded = Image.open(io.BytesIO(body)).convert("RGB")
        distorted = self.scratch / "distorted.png"
        decoded.save(distorted)
        butteraugli = subprocess.run(
            ["butteraugli_main", str(self.path), str(distorted)], capture_output=True, text=True, check=True
        ).stdout.split()
        ssimulacra = subprocess.run(
            ["ssimulacra_main", str(self.path), str(distorted)], capture_output=True, text=True, check=True
        ).stdout.split()
        return {
            "bytes": len(body),
            "bpp": 8 * len(body) / self.pixels,
            "butteraugli": float(butteraugli[0]),
            "butteraugli_3norm": float(butteraugli[butteraugli.index("3-norm:") + 1]),
            "ssimulacra": float(ssimulacra[0]),
            "ssimulacra2": self.ours.score(np.asarray(decoded)),
        }


def sharp_encodes(images: dict[str, Path], scratch: Path) -> tuple[dict[str, Any], str] | None:
    """sharp's encodes of each PNG: {name: {fmt: {quality | "default": path}}}; None without node."""
    if shutil.which("node") is None or not (BENCH / "node_modules" / "sharp").is_dir():
        from bench.proc import ensure_sharp

        if ensure_sharp() is None:
            return None
    spec = scratch / "sharp.json"
    spec.write_text(
        json.dumps(
            {
                "images": [{"name": name, "input": str(path)} for name, path in images.items()],
                "qualities": SHARP_SWEEP,
                "out": str(scratch),
            }
        )
    )
    answer = subprocess.run(
        ["node", str(BENCH / "sharp_quality.js"), str(spec)], capture_output=True, text=True, check=True
    )
    parsed = json.loads(answer.stdout)
    return parsed["results"], parsed["version"]


def _summary(rows: list[dict[str, float]], baseline: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """Across images: total bytes, median bpp, butteraugli median and p90, the others' medians."""
    butteraugli = [r["butteraugli"] for r in rows]
    summary = {
        "images": len(rows),
        "bytes": sum(int(r["bytes"]) for r in rows),
        "bpp": round(statistics.median(r["bpp"] for r in rows), 3),
        "butteraugli_median": round(statistics.median(butteraugli), 2),
        "butteraugli_p90": round(float(np.percentile(butteraugli, 90)), 2),
        "butteraugli_3norm_median": round(statistics.median(r["butteraugli_3norm"] for r in rows), 2),
        "ssimulacra_median": round(statistics.median(r["ssimulacra"] for r in rows), 4),
        "ssimulacra2_median": round(statistics.median(r["ssimulacra2"] for r in rows), 1),
    }
    if baseline is not None:
        ratios = [r["bytes"] / b["bytes"] for r, b in zip(rows, baseline, strict=True)]
        summary["bytes_vs_q60"] = round(summary["bytes"] / sum(int(b["bytes"]) for b in baseline), 3)
        summary["worst_image_vs_q60"] = round(max(ratios), 3)
    return summary


def score_corpus() -> dict[str, Any]:
    images = corpus()
    log(f"q=auto: {len(images)} photos at {WIDTH} px, libjxl's tools on every encode ...")
    ways: dict[str, dict[str, dict[str, dict[str, float]]]] = {}  # fmt -> way -> image -> scores

    def keep(fmt: str, way: str, name: str, scores: dict[str, float]) -> None:
        ways.setdefault(fmt, {}).setdefault(way, {})[name] = scores

    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        paths = {}
        judges = {}
        for name, image in images.items():
            judges[name] = Judge(image, scratch, name)
            paths[name] = judges[name].path
        peer = sharp_encodes(paths, scratch)
        for name, image in images.items():
            judge = judges[name]
            for fmt in FORMATS:
                keep(fmt, "q60", name, judge(encoded(image, 60, fmt)))
                # today's service at its fixed qualities: what it takes to reach auto's look without auto
                for quality in TODAY_QUALITIES:
                    scores = ways[fmt]["q60"][name] if quality == 60 else judge(encoded(image, quality, fmt))
                    keep(fmt, f"ours q{quality}", name, scores)
                for target in QUALITY_TARGETS:
                    choice = imaging.choose(image.copy(), fmt, target)
                    scores = judge(choice.body)
                    scores.update(quality=choice.quality, encodes=choice.encodes)
                    keep(fmt, f"auto {target}", name, scores)
                if peer is not None:
                    for quality, path in peer[0][name][fmt].items():
                        way = "sharp default" if quality == "default" else f"sharp q{quality}"
                        keep(fmt, way, name, judge(Path(path).read_bytes()))
    results = summarize(ways, list(images))
    results["sharp"] = peer[1] if peer is not None else None
    # Every photo's scores, for a second look (bench/results.json keeps the summaries only).
    PER_IMAGE.parent.mkdir(exist_ok=True)
    PER_IMAGE.write_text(json.dumps({"images": list(images), "ways": ways}, indent=1) + "\n")
    return results


def summarize(ways: dict[str, Any], names: list[str]) -> dict[str, Any]:
    """Per format and way, across the real photos (all photos when there are none), with the
    held-out photos and the generated ones summed up apart; sharp at auto good's look."""
    generated = [n for n in names if n.startswith("generated")]
    photos = [n for n in names if n not in generated] or names
    held = [n for n in photos if n in HELD_OUT]
    formats: dict[str, Any] = {}
    for fmt in FORMATS:
        rows: dict[str, Any] = {}
        for way, per_image in ways[fmt].items():

            def part(group: list[str], per_image: dict[str, Any] = per_image, fmt: str = fmt) -> dict[str, Any]:
                return _summary([per_image[n] for n in group], [ways[fmt]["q60"][n] for n in group])

            rows[way] = part(photos)
            if way.startswith("auto"):
                rows[way]["encodes_mean"] = round(statistics.mean(per_image[n]["encodes"] for n in names), 2)
                rows[way]["encodes_max"] = max(int(per_image[n]["encodes"]) for n in names)
                if held:
                    rows[way]["held_out"] = part(held)
            if generated and photos != names:
                rows[way]["generated"] = part(generated)
        auto = rows["auto good"]

        def same_look(prefix: str, rows: dict[str, Any] = rows, auto: dict[str, Any] = auto) -> int | None:
            """The lowest quality of a sweep whose butteraugli p90 is no worse than auto good's."""
            sweep = sorted((int(way.split("q")[1]), summary) for way, summary in rows.items() if way.startswith(prefix))
            return next((q for q, s in sweep if s["butteraugli_p90"] <= auto["butteraugli_p90"]), None)

        same, ours = same_look("sharp q"), same_look("ours q")
        formats[fmt] = {
            "rows": rows,
            "today_same_look_quality": ours,
            "auto_vs_today_same_look": (
                round(auto["bytes"] / rows[f"ours q{ours}"]["bytes"], 3) if ours is not None else None
            ),
            "sharp_same_look_quality": same,
            "sharp_same_look_bytes": rows[f"sharp q{same}"]["bytes"] if same is not None else None,
            "auto_vs_sharp_same_look": (
                round(auto["bytes"] / rows[f"sharp q{same}"]["bytes"], 3) if same is not None else None
            ),
        }
    return {"width": WIDTH, "images": names, "photos": photos, "held_out": held, "formats": formats}


def misses() -> list[dict[str, Any]]:
    """Miss latency from the original's bytes, auto (`good`) against q=60, per format and width."""
    originals = {name: png(image) for name, image in sources().items() if name in ("sharp", "generated-1")}
    shared = samples.shared_images()
    if shared is not None and (shared / "sharp-bench-2725x2225.jpg").is_file():
        originals["sharp"] = (shared / "sharp-bench-2725x2225.jpg").read_bytes()
    else:
        originals["generated-1"] = samples.jpeg(samples.photo(2400, 1800, seed=1))
    rows = []
    for name, data in originals.items():
        for width in MISS_WIDTHS:
            for fmt in FORMATS:
                timings: dict[str, list[float]] = {"q60": [], "auto": []}
                sizes: dict[str, int] = {}
                for _ in range(MISS_ROUNDS):
                    for label, quality in (("q60", 60), ("auto", AUTO)):
                        started = time.perf_counter()
                        body, _ = imaging.transform(
                            data, width=width, height=None, fit="cover", quality=quality, fmt=fmt, target="good"
                        )
                        timings[label].append(time.perf_counter() - started)
                        sizes[label] = len(body)
                q60, auto = (statistics.median(timings[k]) * 1000 for k in ("q60", "auto"))
                rows.append(
                    {
                        "image": name,
                        "width": width,
                        "format": fmt,
                        "q60_ms": round(q60),
                        "auto_ms": round(auto),
                        "ratio": round(auto / q60, 2),
                        "q60_bytes": sizes["q60"],
                        "auto_bytes": sizes["auto"],
                    }
                )
                log(f"miss {name} {width} {fmt}: q60 {q60:.0f} ms, auto {auto:.0f} ms")
    return rows


def _timed(call: Callable[[], object], rounds: int = MISS_ROUNDS + 2) -> float:
    """The median of `rounds` calls, in ms."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def metric_cost() -> list[dict[str, Any]]:
    """What one score costs, ours beside libjxl's compiled metrics, per width: our SSIMULACRA 2
    (preparing the reference, and scoring one decoded JPEG q=60 against it) and libjxl's
    `ssimulacra_main` and `butteraugli_main` on the same pair of PNGs. libjxl's times are the
    tool's run less its run on an 8 x 8 pair (starting the process and reading the files)."""
    found = sources()
    source = found.get("sharp") or found["generated-1"]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        tiny = Image.new("RGB", (8, 8), (120, 90, 60))
        tiny.save(scratch / "tiny.png")
        for width in MISS_WIDTHS:
            image = finished(png(source), width)
            decoded = np.asarray(Image.open(io.BytesIO(encoded(image, 60, "jpeg"))).convert("RGB"))
            image.save(scratch / "reference.png")
            Image.fromarray(decoded).save(scratch / "distorted.png")
            pixels = np.asarray(image)
            reference = perceptual.Reference(pixels)
            exact = perceptual.Reference(pixels, exact=True)
            row: dict[str, Any] = {
                "width": width,
                "pixels": image.width * image.height,
                "scored_pixels": sum((r - left) * (b - t) for left, t, r, b in reference.boxes),
                "ours_reference_ms": round(_timed(partial(perceptual.Reference, pixels)), 1),
                "ours_score_ms": round(_timed(partial(reference.score, decoded)), 1),
                "ours_exact_reference_ms": round(_timed(partial(perceptual.Reference, pixels, exact=True)), 1),
                "ours_exact_score_ms": round(_timed(partial(exact.score, decoded)), 1),
            }
            pair = [str(scratch / "reference.png"), str(scratch / "distorted.png")]
            floor = [str(scratch / "tiny.png")] * 2
            for tool in ("ssimulacra_main", "butteraugli_main"):
                run_pair = partial(subprocess.run, [tool, *pair], capture_output=True, check=True)
                run_floor = partial(subprocess.run, [tool, *floor], capture_output=True, check=True)
                row[f"{tool}_ms"] = round(_timed(run_pair) - _timed(run_floor), 1)
            rows.append(row)
            log(f"metric at {width} px: {row}")
    return rows


def run() -> dict[str, Any]:
    started = time.perf_counter()
    results = score_corpus()
    results["misses"] = misses()
    results["metric"] = metric_cost()
    results["seconds"] = round(time.perf_counter() - started)
    return results


if __name__ == "__main__":
    print(json.dumps(run(), indent=1))
