"""What the benchmarks run in a fresh process (so peak memory and thread settings are its own).

python -m bench.worker vips TASKS.json      pyvips on the transform tasks (VIPS_CONCURRENCY=1)
python -m bench.worker ours TASKS.json      imaging.transform on the same tasks
python -m bench.worker memory PATH FMT W    one transform; peak RSS before and after
python -m bench.worker sync ENDPOINT MODE   one sync worker over the emulator S3's originals (per-variant | decode-once)
python -m bench.worker render PATHS ROUNDS  an original's standard set, per variant and from one decode (CPU only)
python -m bench.worker jpeg-options TASKS.json  the JPEG task by each way tried to make it faster (issue 16)
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _rss_mb() -> float:
    """Peak resident set of this process image (VmHWM). Not ru_maxrss: on Linux that
    carries over the parent's high-water mark through fork and exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rounds(run: Callable[[], bytes], rounds: int) -> tuple[list[float], bytes]:
    output = run()  # warm-up
    ms = []
    for _ in range(rounds):
        started = time.perf_counter()
        output = run()
        ms.append((time.perf_counter() - started) * 1000)
    return ms, output


def ours(spec: dict[str, Any]) -> dict[str, Any]:
    from edge.imaging import transform

    results = {}
    for task in spec["tasks"]:
        data = Path(task["input"]).read_bytes()

        def run(task: dict[str, Any] = task, data: bytes = data) -> bytes:
            return transform(
                data, width=task["width"], height=task["height"], fit="cover", quality=task["quality"], fmt=task["fmt"]
            )[0]

        ms, output = _rounds(run, task["rounds"])
        path = Path(spec["out"]) / f"ours-{task['name']}.{task['fmt']}"
        path.write_bytes(output)
        results[task["name"]] = {"ms": ms, "bytes": len(output), "output": str(path)}
    return {"results": results}


def vips(spec: dict[str, Any]) -> dict[str, Any]:
    import pyvips

    pyvips.cache_set_max(0)
    suffix = {"jpeg": ".jpg", "webp": ".webp", "avif": ".avif", "png": ".png"}
    options = {"jpeg": {"Q": 0, "optimize_coding": True}, "webp": {"Q": 0, "effort": 4}, "avif": {"Q": 0, "effort": 4}}
    results = {}
    for task in spec["tasks"]:
        data = Path(task["input"]).read_bytes()
        save = {**options[task["fmt"]], "Q": task["quality"]}

        def run(task: dict[str, Any] = task, data: bytes = data, save: dict[str, Any] = save) -> bytes:
            if task["height"]:
                image = pyvips.Image.thumbnail_buffer(data, task["width"], height=task["height"], crop="centre")
            else:
                image = pyvips.Image.thumbnail_buffer(data, task["width"], height=10_000_000)
            return bytes(image.write_to_buffer(suffix[task["fmt"]], **save))

        ms, output = _rounds(run, task["rounds"])
        path = Path(spec["out"]) / f"pyvips-{task['name']}.{task['fmt']}"
        path.write_bytes(output)
        results[task["name"]] = {"ms": ms, "bytes": len(output), "output": str(path)}
    return {"results": results, "version": pyvips.version(0), "minor": pyvips.version(1)}


def profile(spec: dict[str, Any]) -> dict[str, Any]:
    """Where the time of the JPEG task goes in Pillow: decode (DCT-scaled), resize, encode."""
    import io

    from PIL import Image

    task = next(t for t in spec["tasks"] if t["name"] == "jpeg")
    data = Path(task["input"]).read_bytes()
    size = (task["width"], task["height"])
    steps: dict[str, list[float]] = {"decode (draft 1/2)": [], "resize (Lanczos)": [], "encode (optimised)": []}
    for _ in range(task["rounds"] + 1):
        started = time.perf_counter()
        source = Image.open(io.BytesIO(data))
        source.draft("RGB", size)
        source.load()
        decoded = time.perf_counter()
        image = source.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
        resized = time.perf_counter()
        image.save(io.BytesIO(), "JPEG", quality=task["quality"], optimize=True)
        encoded = time.perf_counter()
        for name, (a, b) in zip(steps, ((started, decoded), (decoded, resized), (resized, encoded)), strict=True):
            steps[name].append((b - a) * 1000)
    return {name: round(sorted(values[1:])[len(values[1:]) // 2], 1) for name, values in steps.items()}


def memory(path: str, fmt: str, width: int) -> dict[str, Any]:
    from edge.imaging import Limits, transform

    data = Path(path).read_bytes()
    before = _rss_mb()
    started = time.perf_counter()
    output, _ = transform(
        data,
        width=width,
        height=None,
        fit="cover",
        quality=80,
        fmt=fmt,
        limits=Limits(max_pixels=60_000_000, max_input_bytes=500 * 1024 * 1024),
    )
    return {
        "baseline_mb": round(before, 1),
        "peak_mb": round(_rss_mb(), 1),
        "ms": round((time.perf_counter() - started) * 1000, 1),
        "bytes": len(output),
    }


def sync(endpoint: str, mode: str) -> dict[str, Any]:
    """One worker over the emulator S3's originals: today's per-variant path, or the decode-once batch.

    "per-variant" is what the sync job did before decode-once: per original one listing,
    one read, then for each standard variant a full `transform` (decode, resize, encode)
    and a PUT, one after the other. "decode-once" is `Sync.build_batch` as a Distributed
    Map child runs it.
    """
    from edge import imaging, variants
    from edge.settings import ORIGINAL_PREFIX, Settings
    from sync.backfill import s3_factory
    from sync.job import BUILD_BATCH, Sync, chunked

    settings = Settings(**json.loads(sys.stdin.read()))
    job = Sync(settings, s3_factory(endpoint))
    originals = list(job.originals())
    before = _rss_mb()
    started = time.perf_counter()
    built = written = 0
    if mode == "per-variant":
        limits = imaging.Limits.of(settings)
        for original in originals:
            job._stored([original.key])
            data = job.primary.get_object(Bucket=settings.primary_bucket, Key=ORIGINAL_PREFIX + original.key)[
                "Body"
            ].read()
            for variant in variants.standard_set(original.key, settings):
                body, content_type = imaging.transform(
                    data,
                    width=variant.width,
                    height=None,
                    fit="cover",
                    quality=variant.quality,
                    fmt=variant.fmt,
                    limits=limits,
                )
                job.fallback.put_object(
                    Bucket=settings.fallback_bucket, Key=variant.object_path, Body=body, ContentType=content_type
                )
                built += 1
                written += len(body)
    else:
        for batch in chunked(originals, BUILD_BATCH):
            summary = job.build_batch(batch)
            built, written = built + summary.built, written + summary.bytes_written
    seconds = time.perf_counter() - started
    return {
        "mode": mode,
        "originals": len(originals),
        "built": built,
        "bytes_written": written,
        "seconds": round(seconds, 2),
        "originals_per_second": round(len(originals) / seconds, 3),
        "baseline_mb": round(before, 1),
        "peak_mb": round(_rss_mb(), 1),
    }


def render(paths: list[str], rounds: int) -> dict[str, Any]:
    """CPU only: an original's standard set (10 widths x WebP and JPEG, q60), per variant and from one decode."""
    from edge import imaging
    from edge.settings import Settings

    settings = Settings()
    datas = [Path(path).read_bytes() for path in paths]

    def per_variant(data: bytes) -> None:
        for fmt in settings.standard_formats:
            for width in settings.widths:
                imaging.transform(data, width=width, height=None, fit="cover", quality=60, fmt=fmt)

    def once(data: bytes) -> None:
        for _ in imaging.render_set(data, widths=settings.widths, formats=settings.standard_formats, quality=60):
            pass

    times: dict[str, list[float]] = {"per-variant": [], "decode-once": [], "encoding": []}
    encode = imaging._encode
    spent = [0.0]

    def timed_encode(*args: Any, **kwargs: Any) -> bytes:
        started = time.perf_counter()
        try:
            return encode(*args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    for data in datas:  # warm-up
        per_variant(data)
        once(data)
    for _ in range(rounds):  # interleaved, so drift on a busy machine hits both alike
        for name, run in (("per-variant", per_variant), ("decode-once", once)):
            spent[0] = 0.0
            imaging._encode = timed_encode
            started = time.perf_counter()
            for data in datas:
                run(data)
            times[name].append((time.perf_counter() - started) / len(datas))
            imaging._encode = encode
            if name == "decode-once":
                times["encoding"].append(spent[0] / len(datas))  # the encoders' share, the same in both paths
    return {name: statistics.median(values) for name, values in times.items()}


def vips_metadata(rounds: int, paths: list[str]) -> dict[str, Any]:
    """pyvips doing what a placeholder needs: the header, then a 32-pixel sample (shrink-on-load)."""
    import pyvips

    pyvips.cache_set_max(0)
    results = {}
    for path in paths:
        data = Path(path).read_bytes()

        def run(data: bytes = data) -> bytes:
            header = pyvips.Image.new_from_buffer(data, "", access="sequential")
            assert header.width > 0
            return bytes(pyvips.Image.thumbnail_buffer(data, 32, height=32).write_to_memory())

        ms, _ = _rounds(run, rounds)
        results[path] = {"sample_ms": ms}
    return results


def _jpeg_ways(size: tuple[int, int], quality: int) -> dict[str, Callable[[bytes], bytes]]:
    """Each way tried to make the JPEG task faster within Pillow, as a whole transform (cover is a
    no-op crop here: the task's aspect ratio is the source's). The first is what ships."""
    import io

    from PIL import Image, ImageFile

    from edge.imaging import transform

    lanczos = Image.Resampling.LANCZOS

    def encode(image: Image.Image, optimize: bool = True) -> bytes:
        out = io.BytesIO()
        image.save(out, "JPEG", quality=quality, optimize=optimize)
        return out.getvalue()

    def drafted(data: bytes, mode: str = "RGB") -> Image.Image:
        image = Image.open(io.BytesIO(data))
        image.draft(mode, size)
        return image

    def dct_3_8(data: bytes) -> bytes:
        # libjpeg-turbo scales by M/8; asked for 1/3 it picks 3/8 (jdmaster.c), which Pillow's draft
        # (1/1, 1/2, 1/4, 1/8) never asks for. The image's size is set to what libjpeg will produce.
        image = Image.open(io.BytesIO(data))
        decoder, _, offset, args = image.tile[0]
        width, height = (image.size[0] * 3 + 7) // 8, (image.size[1] * 3 + 7) // 8
        image.tile = [ImageFile._Tile(decoder, (0, 0, width, height), offset, args)]
        image._size = (width, height)
        image.decoderconfig = (3, 0)
        return encode(image.resize(size, lanczos))

    def planar(data: bytes) -> bytes:
        # luma at full size, chroma straight to the 4:2:0 size the encoder keeps, then replicated
        # so the encoder's 2x2 averaging gives it back unchanged
        luma, cb, cr = drafted(data, "YCbCr").split()
        half = ((size[0] + 1) // 2, (size[1] + 1) // 2)
        box = (0.0, 0.0, size[0] / 2, size[1] / 2)
        chroma = [
            c.resize(half, lanczos, reducing_gap=1.5).resize(size, Image.Resampling.NEAREST, box=box) for c in (cb, cr)
        ]
        return encode(Image.merge("YCbCr", (luma.resize(size, lanczos), *chroma)))

    return {
        "as shipped: draft 1/2, Lanczos, RGB, optimised Huffman": lambda data: transform(
            data, width=size[0], height=size[1], fit="cover", quality=quality, fmt="jpeg"
        )[0],
        "decode to YCbCr, resize and encode in YCbCr (no colour conversion)": lambda data: encode(
            drafted(data, "YCbCr").resize(size, lanczos, reducing_gap=3.0)
        ),
        "DCT-scale 3/8 on decode, then Lanczos": dct_3_8,
        "planar: luma Lanczos, chroma at 4:2:0 size": planar,
        "Huffman tables not optimised": lambda data: encode(drafted(data).resize(size, lanczos), optimize=False),
        "kernel swap: bicubic": lambda data: encode(drafted(data).resize(size, Image.Resampling.BICUBIC)),
        "kernel swap: Hamming": lambda data: encode(drafted(data).resize(size, Image.Resampling.HAMMING)),
    }


def jpeg_options(spec: dict[str, Any]) -> dict[str, Any]:
    """The JPEG task by each way in `_jpeg_ways`, rounds interleaved (drift hits each alike)."""
    task = next(t for t in spec["tasks"] if t["name"] == "jpeg")
    data = Path(task["input"]).read_bytes()
    ways = _jpeg_ways((task["width"], task["height"]), task["quality"])
    outputs = {name: run(data) for name, run in ways.items()}  # warm-up
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(max(task["rounds"] * 3, 20)):
        for name, run in ways.items():
            started = time.perf_counter()
            outputs[name] = run(data)
            times[name].append((time.perf_counter() - started) * 1000)
    results = {}
    for index, (name, output) in enumerate(outputs.items()):
        path = Path(spec["out"]) / f"jpeg-way-{index}.jpeg"
        path.write_bytes(output)
        results[name] = {"ms": round(statistics.median(times[name]), 1), "bytes": len(output), "output": str(path)}
    return results


def main() -> None:
    command, *args = sys.argv[1:]
    if command in ("ours", "vips", "profile", "jpeg-options"):
        spec = json.loads(Path(args[0]).read_text())
        result = {"ours": ours, "vips": vips, "profile": profile, "jpeg-options": jpeg_options}[command](spec)
    elif command == "memory":
        result = memory(args[0], args[1], int(args[2]))
    elif command == "render":
        result = render(json.loads(args[0]), int(args[1]))
    elif command == "vips-metadata":
        result = vips_metadata(int(args[0]), args[1:])
    else:
        result = sync(args[0], args[1])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
