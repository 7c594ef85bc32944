"""The figures the README quotes from measurements, generated, never typed.

In README.md each measured figure stands between `<!-- fig:NAME -->` and `<!-- /fig -->`;
NAME is a key of FIGURES, which says where the number comes from (`bench/results.json`, written
by `make bench`; `bench/first_run.json`, by `python -m bench.first_run`) and how it is written.
`python -m bench.figures` lists the figures that differ from the measurements (exit 1 when any
does); `--write` rewrites them (`make bench` does after a run). `tests/test_readme_figures.py`
fails when the README and the measurements disagree, and when a number with a unit appears in
the README's prose outside a figure without being a limit or default it names.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SOURCES = {"bench": ROOT / "bench" / "results.json", "first_run": ROOT / "bench" / "first_run.json"}
SPAN = re.compile(r"<!-- fig:(?P<name>[\w.-]+) -->(?P<text>.*?)<!-- /fig -->", re.DOTALL)

MB = 1024 * 1024
Measured = dict[str, Any]


def _mb(size: float) -> str:
    return f"{size / MB:.1f} MB"


def _kb(size: float) -> str:
    return f"{size / 1024:.0f} KB"


def _about(ms: float, step: int = 5) -> str:
    """A time quoted as "about": to the nearest `step` ms (the runs' spread is wider than 1 ms)."""
    return f"{round(ms / step) * step:.0f} ms"


def _bundle(m: Measured, function: str) -> dict[str, int]:
    sizes: dict[str, int] = m["bench"]["footprint"]["bundles"][function]
    return sizes


def _fallback(m: Measured, index: int) -> dict[str, Any]:
    row: dict[str, Any] = m["bench"]["footprint"]["fallback"][index]
    return row


def _metadata(m: Measured, index: int) -> dict[str, Any]:
    row: dict[str, Any] = m["bench"]["catalog"]["metadata"]["rows"][index]
    return row


def _misses(m: Measured, s3: str) -> list[dict[str, Any]]:
    return [r for r in m["bench"]["misses"]["rows"] if r["function"] == "resize" and r["s3"] == s3]


def _fallback_month(m: Measured) -> str:
    total = _fallback(m, 0)["total"]
    return f"${total * 1_000_000 / 1e9 * _s3_price():,.0f}"


def _s3_price() -> float:
    from bench import prices

    return prices.S3_STANDARD_GB_MONTH


def _upload_fallback() -> int:
    """Requests one upload sends the fallback bucket, for the dev stack's standard set."""
    from bench import requests
    from components import config

    settings = config.from_stack_file("dev").edge_settings()
    standard = len(settings.widths) * len(settings.standard_formats)
    return sum(requests.requests_per_operation(standard, 1)["upload"]["fallback"].values())


def _reconcile_month(where: str, *, old: bool = False) -> str:
    """LISTs of `where` a month for prod's reconcile over ops/traffic.yaml's stored originals, by the
    model tests/test_requests.py counts (`old`: the engine before, one primary LIST per original)."""
    import yaml

    from bench import requests
    from components import config

    stack = config.from_stack_file("prod")
    settings = stack.edge_settings()
    originals = int(yaml.safe_load((ROOT / "ops" / "traffic.yaml").read_text())["originals_stored"])
    runs = requests.runs_per_month(stack.sync_schedule)
    standard = len(settings.widths) * len(settings.standard_formats)
    steady = requests.requests_per_operation(standard, originals)["reconcile_steady"]
    lists = originals if old else steady[where]["ListObjectsV2"]
    return f"{round(runs * lists):,}"


def _formats(m: Measured) -> dict[str, Any]:
    formats: dict[str, Any] = m["bench"]["quality_auto"]["formats"]
    return formats


def _auto(m: Measured, fmt: str, way: str = "auto good", part: str | None = None) -> dict[str, Any]:
    row: dict[str, Any] = _formats(m)[fmt]["rows"][way]
    return row[part] if part else row


def _percent_fewer(ratio: float) -> str:
    return f"{round((1 - ratio) * 100)}%"


def _markdown(headers: tuple[str, ...], rows: Sequence[Sequence[object]]) -> str:
    """A generated table, set apart from the prose around it (report.grid's markdown)."""
    from bench import report

    return "\n" + report.grid(headers, rows, markdown=True) + "\n"


def _auto_table(m: Measured) -> str:
    """The README's q=auto table: per format, today's q=60 against auto `good`, held-out photos
    and sharp at the same look."""
    auto = m["bench"]["quality_auto"]
    rows = []
    for fmt, found in auto["formats"].items():
        today, good = found["rows"]["q60"], found["rows"].get("auto good")
        if good is None:
            continue
        held = good.get("held_out") or {}
        versus = found.get("auto_vs_sharp_same_look")
        ours = found.get("auto_vs_today_same_look")
        rows.append(
            (
                fmt.upper() if fmt != "webp" else "WebP",
                f"{today['bytes'] / 1000:.1f} KB, {today['butteraugli_median']} / {today['butteraugli_p90']}",
                f"{good['bytes_vs_q60']}x, {good['butteraugli_median']} / {good['butteraugli_p90']}",
                f"{held['bytes_vs_q60']}x, p90 {held['butteraugli_p90']}" if held else "-",
                f"q{found['today_same_look_quality']}: auto {ours}x its bytes" if ours is not None else "-",
                f"its q{found['sharp_same_look_quality']}: auto {versus}x its bytes" if versus is not None else "-",
            )
        )
    headers = (
        "format",
        "today q=60: bytes, butteraugli median / p90",
        "auto `good`: bytes vs q=60, butteraugli median / p90",
        f"held out ({len(auto['held_out'])}): bytes vs q=60, p90",
        "today at auto's look",
        "sharp at auto's look",
    )
    return _markdown(headers, rows)


def _misses_table(m: Measured) -> str:
    """auto's miss against q=60's, per photo, width and format (decode, resize, encode; no S3)."""
    rows = [
        (r["image"], r["width"], r["format"], r["q60_ms"], r["auto_ms"], f"{r['ratio']}x")
        for r in m["bench"]["quality_auto"]["misses"]
    ]
    return _markdown(("photo", "width", "format", "q=60 ms", "auto ms", "auto / q=60"), rows)


def _metric_table(m: Measured) -> str:
    """What one score costs: ours (reference, then one candidate) beside libjxl's compiled tools."""
    rows = [
        (
            r["width"],
            f"{r['pixels']:,}" + (f" ({r['scored_pixels']:,} in tiles)" if r["scored_pixels"] < r["pixels"] else ""),
            r["ours_reference_ms"],
            r["ours_score_ms"],
            f"{r['ours_exact_reference_ms']} / {r['ours_exact_score_ms']}",
            r["ssimulacra_main_ms"],
            r["butteraugli_main_ms"],
        )
        for r in m["bench"]["quality_auto"]["metric"]
    ]
    headers = (
        "width",
        "pixels",
        "ours: reference ms",
        "ours: a candidate ms",
        "ours, every weight: reference / candidate ms",
        "libjxl ssimulacra_main ms",
        "libjxl butteraugli_main ms",
    )
    return _markdown(headers, rows)


def _jxl_table(m: Measured) -> str:
    """Bytes of q=auto `good` per format, JPEG XL beside AVIF and WebP (bench/jxlbench.py)."""
    rows = [
        (
            r["input"],
            r["width"],
            *(f"{r['bytes'][fmt]:,}" for fmt in ("avif", "jxl", "webp")),
            f"{r['bytes']['jxl'] / r['bytes']['webp']:.2f}",
        )
        for r in m["bench"]["jxl"]["same_look"]
    ]
    return _markdown(("photo", "width", "AVIF", "JPEG XL", "WebP", "JPEG XL / WebP"), rows)


def _sample_gif() -> bytes:
    """The emulator's sample animation (localcdn/samples.py), as uploaded."""
    from localcdn import samples

    return samples.animation()


def _gif_encoded(fmt: str) -> int:
    """What the sample animation's 320 px q=60 encode weighs (the encode never-larger compares with)."""
    from edge import imaging

    body, _ = imaging.transform(_sample_gif(), width=320, height=None, fit="cover", quality=60, fmt=fmt)
    return len(body)


def _jpeg_factor(row: dict[str, Any]) -> float:
    return float(row["total"] / row["bytes"]["webp"])


FIGURES: dict[str, Callable[[Measured], str]] = {
    # a newcomer's first `make serve` (bench/first_run.py)
    "first_run.seconds": lambda m: f"{m['first_run']['serve_seconds']} s",
    "first_run.venv": lambda m: f"{m['first_run']['venv_mb']} MB",
    "first_run.pip_seconds": lambda m: f"{m['first_run']['pip']['serve_seconds']} s",
    "first_run.pip_venv": lambda m: f"{m['first_run']['pip']['venv_mb']} MB",
    # what each function ships (bench/footprint.py)
    "bundle.resize.zipped": lambda m: _mb(_bundle(m, "resize")["zipped"]),
    "bundle.resize.unzipped": lambda m: _mb(_bundle(m, "resize")["unzipped"]),
    "bundle.resize_auto.zipped": lambda m: _mb(_bundle(m, "resize (q=auto)")["zipped"]),
    "bundle.resize_auto.extra": lambda m: _mb(_bundle(m, "resize (q=auto)")["zipped"] - _bundle(m, "resize")["zipped"]),
    "bundle.resize_jxl.zipped": lambda m: _mb(_bundle(m, "resize (jxl)")["zipped"]),
    "bundle.resize_jxl.unzipped": lambda m: _mb(_bundle(m, "resize (jxl)")["unzipped"]),
    "bundle.resize_auto_jxl.zipped": lambda m: _mb(_bundle(m, "resize (q=auto, jxl)")["zipped"]),
    "jxl.import_ms": lambda m: f"{m['bench']['jxl']['import_ms']:.0f} ms",
    "jxl.table": _jxl_table,
    "passthrough.gif": lambda m: f"{len(_sample_gif()):,} bytes",
    "passthrough.gif_avif": lambda m: f"{_gif_encoded('avif'):,} bytes",
    "passthrough.gif_webp": lambda m: f"{_gif_encoded('webp'):,} bytes",
    "bundle.sync.zipped": lambda m: _mb(_bundle(m, "sync")["zipped"]),
    "bundle.sync.unzipped": lambda m: _mb(_bundle(m, "sync")["unzipped"]),
    "bundle.metadata.zipped": lambda m: _mb(_bundle(m, "catalogue metadata")["zipped"]),
    "bundle.metadata.unzipped": lambda m: _mb(_bundle(m, "catalogue metadata")["unzipped"]),
    "bundle.api.zipped": lambda m: _kb(_bundle(m, "catalogue API")["zipped"]),
    # the fallback's standard set per original (bench/footprint.py)
    "fallback.photo.size": lambda m: _fallback(m, 0)["size"],
    "fallback.photo.total": lambda m: _mb(_fallback(m, 0)["total"]),
    "fallback.photo.webp": lambda m: _kb(_fallback(m, 0)["bytes"]["webp"]),
    "fallback.photo.jpeg": lambda m: _kb(_fallback(m, 0)["bytes"]["jpeg"]),
    "fallback.generated.size": lambda m: _fallback(m, 1)["size"],
    "fallback.generated.total": lambda m: _kb(_fallback(m, 1)["total"]),
    "fallback.generated.webp": lambda m: _kb(_fallback(m, 1)["bytes"]["webp"]),
    "fallback.generated.jpeg": lambda m: _kb(_fallback(m, 1)["bytes"]["jpeg"]),
    "fallback.jpeg_factor": lambda m: (
        f"{_jpeg_factor(_fallback(m, 0)):.1f}x (photo) to {_jpeg_factor(_fallback(m, 1)):.1f}x"
    ),
    "fallback.month": _fallback_month,
    "price.s3_standard": lambda m: f"${_s3_price()}",
    # the catalogue's metadata read (bench/catalogbench.py)
    "metadata.thumbnail_ms": lambda m: f"{_metadata(m, 0)['ours_ms']} ms",
    "metadata.thumbnail_read": lambda m: f"{_metadata(m, 0)['read_kb']} KB",
    "metadata.whole_ms": lambda m: f"{_metadata(m, 1)['ours_ms']:.0f} ms",
    "metadata.sharp_ms": lambda m: f"{_metadata(m, 1)['sharp_ms']:.0f} ms",
    # cold misses (bench/coldmiss.py)
    # the whole run, and what one upload asks of the fallback (the model tests/test_requests.py counts)
    "bench.minutes": lambda m: f"{max(5, round(m['bench']['seconds'] / 300) * 5)} minutes",
    "requests.upload_fallback": lambda m: str(_upload_fallback()),
    "reconcile.old_primary_month": lambda m: _reconcile_month("primary", old=True),
    "reconcile.primary_month": lambda m: _reconcile_month("primary"),
    "reconcile.fallback_month": lambda m: _reconcile_month("fallback"),
    # q=auto (bench/quality_auto.py)
    "quality_auto.table": _auto_table,
    "quality_auto.misses": _misses_table,
    "quality_auto.metric": _metric_table,
    "quality_auto.over": lambda m: (
        "; ".join(
            f"{r['image']} {r['format']} at {r['width']} px ({r['ratio']}x)"
            for r in m["bench"]["quality_auto"]["misses"]
            if r["ratio"] > 2
        )
        or "none"
    ),
    "quality_auto.photos": lambda m: str(len(m["bench"]["quality_auto"]["photos"])),
    "quality_auto.avif_fewer": lambda m: _percent_fewer(_auto(m, "avif")["bytes_vs_q60"]),
    "quality_auto.avif_p90": lambda m: str(_auto(m, "avif")["butteraugli_p90"]),
    "quality_auto.webp_q60_p90": lambda m: str(_auto(m, "webp", "q60")["butteraugli_p90"]),
    "quality_auto.avif_held_fewer": lambda m: _percent_fewer(_auto(m, "avif", part="held_out")["bytes_vs_q60"]),
    "quality_auto.avif_held_p90": lambda m: str(_auto(m, "avif", part="held_out")["butteraugli_p90"]),
    "quality_auto.webp_held_p90": lambda m: str(_auto(m, "webp", part="held_out")["butteraugli_p90"]),
    "quality_auto.jpeg_p90": lambda m: str(_auto(m, "jpeg")["butteraugli_p90"]),
    "quality_auto.jpeg_q60_p90": lambda m: str(_auto(m, "jpeg", "q60")["butteraugli_p90"]),
    "quality_auto.jpeg_more": lambda m: f"{round((_auto(m, 'jpeg')['bytes_vs_q60'] - 1) * 100)}%",
    "quality_auto.jpeg_today_quality": lambda m: f"q={_formats(m)['jpeg']['today_same_look_quality']}",
    "quality_auto.jpeg_today_fewer": lambda m: _percent_fewer(_formats(m)["jpeg"]["auto_vs_today_same_look"]),
    "quality_auto.encodes": lambda m: ", ".join(
        f"{fmt} {_auto(m, fmt)['encodes_mean']}" for fmt in m["bench"]["quality_auto"]["formats"]
    ),
    "quality_auto.ratios": lambda m: "{}x to {}x".format(
        min(r["ratio"] for r in m["bench"]["quality_auto"]["misses"]),
        max(r["ratio"] for r in m["bench"]["quality_auto"]["misses"]),
    ),
    "cold.boto3_extra": lambda m: _about(_misses(m, "boto3 (before)")[0]["extra_ms"], 10),
    "cold.shipped_extra": lambda m: (
        "{}-{}".format(
            *(_about(f(r["extra_ms"] for r in _misses(m, "edge.s3"))).removesuffix(" ms") for f in (min, max))
        )
        + " ms"
    ),
}


def measured() -> Measured:
    return {name: json.loads(path.read_text(encoding="utf-8")) for name, path in SOURCES.items()}


def render(name: str, values: Measured | None = None) -> str:
    return FIGURES[name](values if values is not None else measured())


def spans(text: str) -> list[tuple[str, str]]:
    """(name, text) of every figure in a README text, in order."""
    return [(m["name"], m["text"]) for m in SPAN.finditer(text)]


def rewritten(text: str, values: Measured) -> str:
    def one(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in FIGURES:
            raise KeyError(name)
        return f"<!-- fig:{name} -->{FIGURES[name](values)}<!-- /fig -->"

    return SPAN.sub(one, text)


def write(path: Path = README) -> bool:
    """Rewrite the README's figures from the measurements; True when anything changed."""
    text = path.read_text(encoding="utf-8")
    new = rewritten(text, measured())
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.figures", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the README's figures from the measurements")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    unknown = sorted({name for name, _ in spans(text)} - set(FIGURES))
    if unknown:
        print(f"bench.figures: README names unknown figures: {', '.join(unknown)}", file=sys.stderr)
        return 1
    values = measured()
    stale = [(name, quoted, FIGURES[name](values)) for name, quoted in spans(text) if quoted != FIGURES[name](values)]
    if args.write:
        write()
        print(f"bench.figures: {len(stale)} figure(s) rewritten in README.md")
        return 0
    for name, quoted, now in stale:
        print(f"{name}: README says {quoted!r}, the measurements say {now!r}")
    if stale:
        print("bench.figures: run `python -m bench.figures --write`", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ModuleNotFoundError as error:  # the serve install (make serve) has no Pulumi SDK nor bench tools
        sys.exit(f"bench.figures: no module {error.name!r} here: make bench (or make test) installs everything")
