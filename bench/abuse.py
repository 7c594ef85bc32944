"""Denial of wallet, measured: what one original can be made to cost by strangers.

- Distinct renderable variants per original, counted by running every combination a URL can
  name through the grammar (`edge.variants.normalize`, the viewer function's twin): an open
  stack, `presetsOnly`, and one signed URL with and without `hints=on` (every hint header a
  viewer may send). Each distinct canonical path is one render, one stored object and one
  cache key.
- The CPU of the worst render: a 25 MP noisy JPEG to AVIF at the largest width, in a fresh
  process (`time.process_time`, so a busy machine does not inflate it).
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import inputs, proc
from edge import signing, variants
from edge.settings import FITS, Settings

SECRET = "bench-abuse-secret"
ACCEPTS = ("image/avif,image/webp,*/*", "image/webp,*/*", "*/*")
# The hint values a viewer may send: every width the headers' grammar takes is clamped and snapped,
# so one value per allowed width (and past the largest) reaches every answer they can give.
DPRS = ("", "1", "1.25", "1.5", "2", "2.5", "3", "3.5", "4", "9")


def _open(settings: Settings) -> set[str]:
    """Every canonical path an unsigned URL of one original can become (fm explicit: Accept adds none)."""
    seen: set[str] = set()
    heights: list[int | None] = [None, *settings.widths]
    for width, height, quality, fmt, fit, crop in itertools.product(
        settings.widths, heights, settings.qualities, settings.formats, FITS, settings.crops
    ):
        query = f"w={width}&q={quality}&fm={fmt}&fit={fit}&crop={crop}" + (f"&h={height}" if height else "")
        seen.add(variants.normalize("/k.jpg", query, None, settings))
    return seen


def _presets(settings: Settings) -> set[str]:
    seen: set[str] = set()
    dprs = [f"{d / 1000:g}" for d in range(1000, 4001)]  # dpr takes 1 to 4 with up to three decimals
    for (name, *_), dpr, fmt in itertools.product(settings.presets, dprs, settings.formats):
        seen.add(variants.normalize("/k.jpg", f"preset={name}&dpr={dpr}&fm={fmt}", None, settings))
    return seen


def _signed(settings: Settings, url: str) -> set[str]:
    """What one signed URL becomes over every Accept and hint header a viewer may send."""
    path, _, query = signing.sign(url, SECRET, "1").partition("?")
    assert signing.verify(path, query, {"1": SECRET}, settings.signing)
    widths = ["", *(str(w) for w in settings.widths), "9999"]
    seen: set[str] = set()
    for accept, width, dpr in itertools.product(ACCEPTS, widths, DPRS):
        hints = {"sec-ch-width": width, "sec-ch-viewport-width": width, "sec-ch-dpr": dpr}
        seen.add(variants.normalize(path, query, accept, settings, hints, signed=True))
    return seen


def variants_per_original() -> list[dict[str, Any]]:
    from components.config import from_stack_file

    dev = from_stack_file("dev").edge_settings()
    signed = Settings(**{**dev.as_dict(), "signing": "required", "client_hints": True})
    only = Settings(**{**dev.as_dict(), "presets_only": True})
    rows = [
        ("open stack (dev's grammar: widths x heights x qualities x formats x fits x crops)", _open(dev)),
        (f"presetsOnly ({len(only.presets)} presets, any dpr, every format)", _presets(only)),
        ("one signed URL, no width, hints off (any Accept and hint headers)", _signed(signed, "/k.jpg")),
        ("one signed URL, w=160, hints off", _signed(signed, "/k.jpg?w=160")),
        ("one signed URL, w=160&hints=on (DPR hints: up to 4x the width)", _signed(signed, "/k.jpg?w=160&hints=on")),
        ("one signed URL, hints=on and no width (any width hint)", _signed(signed, "/k.jpg?hints=on")),
        ("one signed URL, h=450&hints=on (DPR hints, no width hint)", _signed(signed, "/k.jpg?h=450&hints=on")),
    ]
    return [{"case": case, "variants": len(seen)} for case, seen in rows]


def worst_render(megapixels: int = 25) -> dict[str, Any]:
    """CPU seconds of one render of a noisy photo of `megapixels` to AVIF at the largest width, fresh process."""
    path = inputs.cached(f"noise-{megapixels}mp.jpg", lambda: _noise_jpeg(megapixels))
    return proc.run_module("bench.abuse", "render", str(path))


def _noise_jpeg(megapixels: int) -> bytes:
    import numpy as np
    from PIL import Image

    from localcdn import samples

    width = int((megapixels * 1_000_000 * 4 / 3) ** 0.5)
    height = megapixels * 1_000_000 // width
    noise = np.random.default_rng(25).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return samples.jpeg(Image.fromarray(noise), quality=95)


def run() -> dict[str, Any]:
    return {"variants": variants_per_original(), "worst_render": worst_render()}


def _render(path: str) -> None:
    from edge import imaging

    settings = Settings()
    data = Path(path).read_bytes()
    started, cpu = time.perf_counter(), time.process_time()
    body, _ = imaging.transform(
        data, width=settings.widths[-1], height=None, fit="cover", quality=settings.default_quality, fmt="avif"
    )
    print(
        json.dumps(
            {
                "input": f"{len(data) / 1e6:.1f} MB noisy JPEG",
                "output": f"AVIF {settings.widths[-1]} px, {len(body)} bytes",
                "cpu_s": round(time.process_time() - cpu, 2),
                "wall_s": round(time.perf_counter() - started, 2),
            }
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["render"]:
        _render(sys.argv[2])
