"""What a stack ships and stores, measured: each function's bundle as the dev stack builds it
(zipped and unzipped), and the fallback's standard set per original (bytes per format).

Part of `make bench` ("footprint"); the README quotes these through `bench/figures.py`.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import Any

from bench import inputs

MB = 1024 * 1024


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _sizes(path: Path) -> dict[str, int]:
    with zipfile.ZipFile(path) as archive:
        unzipped = sum(info.file_size for info in archive.infolist())
    return {"zipped": path.stat().st_size, "unzipped": unzipped}


def bundles(stack: str = "dev") -> dict[str, dict[str, int]]:
    """Every function's archive, built by the same calls the components make (components/bundle.py
    names each function's wheels), for `stack` and for the same stack serving `q=auto`."""
    from components import bundle, config

    settings = config.from_stack_file(stack).edge_settings()
    auto = config.from_stack_file(stack, overrides={"qualityTarget": "good"}).edge_settings()
    formats = [*settings.formats, "jxl"]
    jxl = config.from_stack_file(stack, overrides={"formats": formats}).edge_settings()
    both = config.from_stack_file(stack, overrides={"formats": formats, "qualityTarget": "good"}).edge_settings()
    built = {
        "viewer function": None,
        "rewrite": bundle.build("rewrite", settings),
        "resize": bundle.build("resize", settings, vendor=bundle.resize_wheels(settings)),
        "resize (q=auto)": bundle.build("resize", auto, vendor=bundle.resize_wheels(auto)),
        "resize (jxl)": bundle.build("resize", jxl, vendor=bundle.resize_wheels(jxl)),
        "resize (q=auto, jxl)": bundle.build("resize", both, vendor=bundle.resize_wheels(both)),
        "sync": bundle.build("sync", settings, vendor=bundle.sync_wheels(settings), architecture="arm64"),
        "catalogue metadata": bundle.build("catalog-metadata", settings, vendor=bundle.METADATA, architecture="arm64"),
        "catalogue API": bundle.build("catalog-api", settings, architecture="arm64"),
        "alarm relay": bundle.plain("alarm-relay"),
    }
    sizes: dict[str, dict[str, int]] = {}
    for name, path in built.items():
        if path is None:
            code = len(bundle.viewer_code(settings).encode())
            sizes[name] = {"zipped": code, "unzipped": code}
        else:
            sizes[name] = _sizes(path)
    return sizes


def fallback_set(stack: str = "dev") -> list[dict[str, Any]]:
    """Bytes the sync job stores per original (every standard width x format, as stored: widths
    an image is too narrow for are stored too), for the benchmark photo and a generated one, at
    the stack's default quality and at `defaultQuality: auto` (`qualityTarget: good`)."""
    from PIL import Image

    from components import config
    from edge import imaging
    from edge.settings import AUTO
    from localcdn import samples

    settings = config.from_stack_file(stack).edge_settings()
    photo, source = inputs.sharp_photo()
    generated = inputs.cached(
        "generated-2400x1600.jpg", lambda: samples.jpeg(samples.photo(2400, 1600, seed=0), quality=88)
    )
    rows = []
    for quality in (settings.default_quality, AUTO):
        for label, path in ((source, photo), ("generated 2400x1600 photo", generated)):
            data = path.read_bytes()
            with Image.open(path) as image:
                size = image.size
            per_format: dict[str, int] = dict.fromkeys(settings.standard_formats, 0)
            for rendition in imaging.render_set(
                data, widths=settings.widths, formats=settings.standard_formats, quality=quality, target="good"
            ):
                per_format[rendition.fmt] += len(rendition.body)
            rows.append(
                {
                    "input": label,
                    "size": f"{size[0]}x{size[1]}",
                    "quality": "auto (good)" if quality == AUTO else quality,
                    "widths": len(settings.widths),
                    "bytes": per_format,
                    "total": sum(per_format.values()),
                }
            )
    return rows


def run() -> dict[str, Any]:
    log("footprint: bundles as the dev stack builds them ...")
    built = bundles()
    log("footprint: the fallback's standard set per original ...")
    return {"stack": "dev", "bundles": built, "fallback": fallback_set()}


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
