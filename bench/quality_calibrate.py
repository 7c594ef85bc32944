"""The calibration behind edge/imaging.py's AUTO table: `python -m bench.quality_calibrate`.

On the calibration photos (the real ones of bench/quality_auto.py's corpus, less HELD_OUT), each
format is encoded at a grid of qualities and each encode scored twice: by our SSIMULACRA 2 (what
the search reads at run time) and by libjxl's butteraugli_main (the independent look, its max
distance). A target is a look: today's WebP at NAMED[target] (`good`: q60), read as the 90th
percentile of butteraugli across the photos. Per format and target the table gets:

- `score`: the lowest SSIMULACRA 2 at which picking, per photo, the lowest quality that reaches it
  (within the ceiling) keeps that format's butteraugli p90 within the target's look;
- `start`: the median of those qualities (where the search starts);
- `slope`: the median score points per quality step there (the search's first step);
- `ceiling`: the most the search may spend: WebP's is the target's own quality (never more bytes
  than today's WebP at it); another format's is the lowest grid quality at which it reaches the
  look on every calibration photo (the look is then bought where it can be, not at any price).

The grid has steps (4 or 5 qualities) and the search does not: each photo's crossing of a score is
interpolated between the grid's two qualities around it, butteraugli with it.

The table is printed as it is pasted into edge/imaging.py.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.quality_auto import HELD_OUT, NAMED, corpus, encoded, log
from edge import perceptual

GRID = {
    "avif": list(range(14, 83, 4)),
    "webp": list(range(30, 96, 5)),
    "jpeg": list(range(30, 96, 5)),
    "jxl": list(range(10, 91, 5)),
}


def measure(names: list[str] | None = None) -> list[dict[str, Any]]:
    """Every calibration photo in every format at every grid quality: bytes, SSIMULACRA 2, butteraugli."""
    rows = []
    images = {name: image for name, image in corpus().items() if not name.startswith("generated")}
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        for name, image in images.items():
            if name in HELD_OUT or (names is not None and name not in names):
                continue
            log(f"calibration grid: {name}")
            reference = scratch / "reference.png"
            image.save(reference)
            ours = perceptual.Reference(np.asarray(image))
            for fmt, qualities in GRID.items():
                for quality in qualities:
                    body = encoded(image, quality, fmt)
                    decoded = Image.open(io.BytesIO(body)).convert("RGB")
                    decoded.save(scratch / "distorted.png")
                    answer = subprocess.run(
                        ["butteraugli_main", str(reference), str(scratch / "distorted.png")],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout.split()
                    rows.append(
                        {
                            "name": name,
                            "fmt": fmt,
                            "q": quality,
                            "bytes": len(body),
                            "s2": ours.score(np.asarray(decoded)),
                            "bmax": float(answer[0]),
                        }
                    )
    return rows


def derive(rows: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """The table from the grid's rows (see the module's docstring)."""
    at = {(r["name"], r["fmt"], r["q"]): r for r in rows}
    names = sorted({r["name"] for r in rows})

    def p90(values: list[float]) -> float:
        return float(np.percentile(values, 90))

    def crossing(name: str, fmt: str, allowed: list[int], threshold: float) -> tuple[float, float]:
        """Where one photo's score reaches `threshold` (the search finds any quality, the grid only
        its steps: interpolated between the two around it), and butteraugli there; the ceiling's
        when it does not."""
        previous = None
        for quality in allowed:
            here = at[(name, fmt, quality)]
            if here["s2"] >= threshold:
                if previous is None or here["s2"] == previous["s2"]:
                    return quality, here["bmax"]
                share = (threshold - previous["s2"]) / (here["s2"] - previous["s2"])
                return (
                    previous["q"] + share * (quality - previous["q"]),
                    previous["bmax"] + share * (here["bmax"] - previous["bmax"]),
                )
            previous = here
        return allowed[-1], at[(name, fmt, allowed[-1])]["bmax"]

    table: dict[str, dict[str, dict[str, float]]] = {}
    for fmt, grid in GRID.items():
        table[fmt] = {}
        for target, named in NAMED.items():
            look = p90([at[(n, "webp", named)]["bmax"] for n in names])
            if fmt == "webp":
                ceiling = named
            else:  # where the format reaches the look on every calibration photo
                ceiling = next((q for q in grid if max(at[(n, fmt, q)]["bmax"] for n in names) <= look), grid[-1])
            allowed = [q for q in grid if q <= ceiling]
            score = next(
                (
                    float(s)
                    for s in np.arange(40.0, 90.0, 0.5)
                    if p90([crossing(n, fmt, allowed, float(s))[1] for n in names]) <= look
                ),
                90.0,
            )
            chosen = [crossing(n, fmt, allowed, score)[0] for n in names]
            slopes = []
            for n, q in zip(names, chosen, strict=True):
                low = max((g for g in grid if g <= q - 4), default=grid[0])
                high = min((g for g in grid if g >= q + 4), default=grid[-1])
                if high > low:
                    slopes.append((at[(n, fmt, high)]["s2"] - at[(n, fmt, low)]["s2"]) / (high - low))
            table[fmt][target] = {
                "score": score,
                "start": min(ceiling, round(statistics.median(chosen))),
                "slope": round(statistics.median(slopes), 2) if slopes else 0.5,
                "ceiling": ceiling,
                "look": round(look, 2),
            }
    return table


def main() -> None:
    cached = Path(sys.argv[sys.argv.index("--grid") + 1]) if "--grid" in sys.argv else None
    if cached is not None and cached.is_file():
        rows = json.loads(cached.read_text())
    else:
        rows = measure()
        if cached is not None:
            cached.write_text(json.dumps(rows))
    table = derive(rows)
    print("AUTO_TABLE: dict[str, dict[str, Calibrated]] = {")
    for fmt, targets in table.items():
        print(f'    "{fmt}": {{')
        for target, c in targets.items():
            print(f'        "{target}": Calibrated({c["score"]}, {c["start"]}, {c["slope"]}, {c["ceiling"]}),')
        print("    },")
    print("}")
    print("looks (butteraugli p90 of today's WebP):", {t: c["look"] for t, c in table["webp"].items()}, file=sys.stderr)


if __name__ == "__main__":
    main()
