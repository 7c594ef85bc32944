"""`python -m bench` (make bench): every measurement, a table on stdout, bench/results.json and BENCHMARKS.md."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

from bench import cache, inputs, quality, report
from bench.proc import ensure_sharp, worker

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
OUT = inputs.CACHE / "out"


SECTIONS = (
    "transform",
    "memory",
    "cold",
    "misses",
    "cache",
    "emulator",
    "sync",
    "service",
    "catalog",
    "hostile",
    "abuse",
    "footprint",
    "jxl",
    "quality_auto",
)
# Lambda@Edge gives origin-response 30 s; a hostile input must end in a third of it.
HOSTILE_BUDGET_SECONDS = 10.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def transform_section(rounds: int, repeats: int = 3) -> dict[str, Any]:
    source, origin = inputs.sharp_photo()
    big = inputs.photo(24)
    tasks: list[dict[str, Any]] = [
        {
            "name": "jpeg",
            "input": str(source),
            "width": 720,
            "height": 588,
            "fmt": "jpeg",
            "quality": 80,
            "rounds": rounds,
        },
        {
            "name": "webp",
            "input": str(source),
            "width": 720,
            "height": 588,
            "fmt": "webp",
            "quality": 80,
            "rounds": rounds,
        },
        {
            "name": "avif",
            "input": str(source),
            "width": 720,
            "height": 588,
            "fmt": "avif",
            "quality": 80,
            "rounds": max(3, rounds // 2),
        },
        {
            "name": "24mp-webp",
            "input": str(big),
            "width": 1024,
            "height": None,
            "fmt": "webp",
            "quality": 80,
            "rounds": max(3, rounds // 2),
        },
    ]
    OUT.mkdir(parents=True, exist_ok=True)
    spec = OUT / "tasks.json"
    spec.write_text(json.dumps({"tasks": tasks, "out": str(OUT)}))
    runners: dict[str, Callable[[], dict[str, Any]]] = {
        "ours": lambda: worker("ours", str(spec)),
        "pyvips": lambda: worker("vips", str(spec), env={"VIPS_CONCURRENCY": "1"}),
    }
    node = ensure_sharp()
    if node is not None:
        runners["sharp"] = lambda: json.loads(
            subprocess.run(
                [node, str(BENCH / "sharp_peer.js"), str(spec)],
                cwd=BENCH,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    peers: dict[str, dict[str, Any]] = {}
    for repeat in range(repeats):  # A B C A B C ...: drift on a shared machine hits every peer alike
        for peer, run in runners.items():
            log(f"transform: {peer} ({repeat + 1}/{repeats}) ...")
            answer = run()
            if peer not in peers:
                peers[peer] = answer
            else:
                for task, measured in answer["results"].items():
                    peers[peer]["results"][task]["ms"].extend(measured["ms"])
    jpeg_profile = worker("profile", str(spec))
    log("transform: the ways tried for the JPEG task ...")
    ways = worker("jpeg-options", str(spec))
    rows = []
    for task in tasks:
        row: dict[str, Any] = {
            "task": task["name"],
            "input": Path(task["input"]).name,
            "rounds": task["rounds"] * repeats,
        }
        outputs = {}
        for peer, answer in peers.items():
            measured = answer["results"][task["name"]]
            row[f"{peer}_ms"] = round(statistics.median(measured["ms"]), 1)
            row[f"{peer}_bytes"] = measured["bytes"]
            outputs[peer] = Path(measured["output"])
        row.update({f"{peer}_ssim": value for peer, value in quality.score(Path(task["input"]), outputs).items()})
        if "sharp" in peers:
            for peer in ("ours", "pyvips"):
                row[f"{peer}_time_ratio"] = round(row[f"{peer}_ms"] / row["sharp_ms"], 2)
                row[f"{peer}_bytes_ratio"] = round(row[f"{peer}_bytes"] / row["sharp_bytes"], 3)
        rows.append(row)
    versions = {
        "sharp": peers.get("sharp", {}).get("version"),
        "sharp_libvips": peers.get("sharp", {}).get("vips"),
        "pyvips_libvips": f"{peers['pyvips']['version']}.{peers['pyvips']['minor']}",
    }
    jpeg = next(row for row in rows if row["task"] == "jpeg")
    scores = quality.score(source, {name: Path(way["output"]) for name, way in ways.items()})
    tried = [
        {
            "way": name,
            "ms": way["ms"],
            "bytes": way["bytes"],
            "ssim": scores[name],
            **({"time_vs_sharp": round(way["ms"] / jpeg["sharp_ms"], 2)} if "sharp_ms" in jpeg else {}),
            **({"bytes_vs_sharp": round(way["bytes"] / jpeg["sharp_bytes"], 3)} if "sharp_bytes" in jpeg else {}),
        }
        for name, way in ways.items()
    ]
    return {
        "source": origin,
        "rows": rows,
        "versions": versions,
        "sharp_available": "sharp" in peers,
        "jpeg_profile_ms": jpeg_profile,
        "jpeg_tried": tried,
        "sharp_jpeg_ssim": jpeg.get("sharp_ssim"),
    }


def memory_section() -> list[dict[str, Any]]:
    rows = []
    for megapixels, fmt in ((12, "jpeg"), (24, "jpeg"), (48, "jpeg"), (24, "png")):
        path = inputs.photo(megapixels, fmt)
        log(f"memory: {megapixels} MP {fmt} ...")
        measured = worker("memory", str(path), "webp", "1024")
        rows.append(
            {
                "input": f"{megapixels} MP {fmt.upper()}",
                "input_mb": round(path.stat().st_size / 1e6, 1),
                **measured,
                "added_mb": round(measured["peak_mb"] - measured["baseline_mb"], 1),
            }
        )
    return rows


def cold_start_section(runs: int = 40) -> list[dict[str, Any]]:
    # What the Lambda Python runtime (awslambdaric's bootstrap) imports before it imports a handler.
    runtime_imports = "import importlib, json, logging, traceback"
    modules = ("edge.rewrite", "edge.resize", "sync.job")
    codes = ["pass", runtime_imports] + [f"import {m}" for m in modules] + [f"{runtime_imports}, {m}" for m in modules]
    times: dict[str, list[float]] = {code: [] for code in codes}
    log("cold start ...")
    for _ in range(runs):  # round-robin, so drift on a busy machine hits every row alike
        for code in codes:
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
            times[code].append((time.perf_counter() - started) * 1000)

    def median_ms(code: str) -> float:
        return round(statistics.median(times[code]), 1)

    bare, runtime = median_ms("pass"), median_ms(runtime_imports)
    rows = [
        {"module": "(bare interpreter)", "ms": bare, "ratio": 1.0},
        {"module": "(the Lambda runtime's own imports)", "ms": runtime, "ratio": round(runtime / bare, 2)},
    ]
    for module in modules:
        ms = median_ms(f"import {module}")
        after_runtime = median_ms(f"{runtime_imports}, {module}")
        loaded = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import sys, {module}; "
                "print(sorted(m for m in ('PIL', 'boto3', 'botocore', 'obstore') if m in sys.modules))",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        rows.append(
            {
                "module": module,
                "ms": ms,
                "ratio": round(ms / bare, 2),
                "heavy_imports": loaded,
                "over_runtime_ratio": round(after_runtime / runtime, 2),
            }
        )
    return rows


def emulator_section(clients: int = 8, seconds: float = 4.0) -> dict[str, Any]:
    from localcdn.process import Emulator

    log("emulator ...")
    with tempfile.TemporaryDirectory() as home:
        emulator = Emulator(home=Path(home))
        try:
            misses: dict[str, list[dict[str, float]]] = {}
            for accept, fmt in (("image/avif,image/webp", "avif"), ("image/webp", "webp"), ("*/*", "jpeg")):
                for width in (320, 640, 1024, 1600):
                    started = time.perf_counter()
                    reply = emulator.get(f"/samples/landscape.jpg?w={width}", accept)
                    wall = (time.perf_counter() - started) * 1000
                    timing = {
                        part.split(";")[0]: float(part.split("dur=")[1])
                        for part in (reply.header("Server-Timing") or "").split(", ")
                        if "dur=" in part
                    }
                    misses.setdefault(fmt, []).append({"width": width, "client_ms": round(wall, 1), **timing})
            hit_path = "/samples/landscape.jpg?w=640"
            hits = []
            for _ in range(300):
                started = time.perf_counter()
                assert emulator.get(hit_path, "image/webp").header("X-Cache") == "Hit"
                hits.append((time.perf_counter() - started) * 1000)
            hits.sort()
            served = [0] * clients
            stop = time.monotonic() + seconds

            def hammer(index: int) -> None:
                connection = HTTPConnection("127.0.0.1", emulator.port, timeout=10)
                while time.monotonic() < stop:
                    connection.request("GET", hit_path, headers={"Accept": "image/webp"})
                    answer = connection.getresponse()
                    answer.read()
                    served[index] += answer.status == 200
                connection.close()

            threads = [threading.Thread(target=hammer, args=(i,)) for i in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            emulator.stop()
    return {
        "misses": misses,
        "hit_ms": {"median": round(statistics.median(hits), 2), "p99": round(hits[int(0.99 * (len(hits) - 1))], 2)},
        "hits_per_second": round(sum(served) / seconds),
        "clients": clients,
    }


def hostile_section() -> dict[str, Any]:
    """The slowest of the hostile corpus (tests/hostile.py) per output format, against the edge's budget."""
    from edge import imaging
    from tests import hostile

    log("hostile inputs ...")
    slowest: dict[str, tuple[float, str]] = {}
    total = 0
    for name, data in hostile.cases():
        for fmt in ("webp", "avif", "jpeg", "png"):
            started = time.perf_counter()
            with contextlib.suppress(imaging.ImageError):  # a clean refusal counts like an image
                imaging.transform(data, width=320, height=None, fit="cover", quality=70, fmt=fmt)
            seconds = time.perf_counter() - started
            total += 1
            if seconds > slowest.get(fmt, (0.0, ""))[0]:
                slowest[fmt] = (seconds, name)
    rows = [{"format": fmt, "slowest_s": round(s, 2), "input": name} for fmt, (s, name) in sorted(slowest.items())]
    return {"transforms": total, "budget_s": HOSTILE_BUDGET_SECONDS, "rows": rows}


def machine() -> dict[str, Any]:
    from PIL import __version__ as pillow
    from PIL import features

    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else ""
    )
    memory = (
        next(
            (
                int(line.split()[1]) // 1024
                for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")
            ),
            0,
        )
        if Path("/proc/meminfo").exists()
        else 0
    )
    node = (
        subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
        if shutil.which("node")
        else None
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mb": memory,
        "os": platform.platform(),
        "python": platform.python_version(),
        "pillow": pillow,
        "libjpeg_turbo": features.version("jpg"),
        "libwebp": features.version("webp"),
        "libavif": features.version("avif"),
        "node": node,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=8, help="timed rounds per transform and run (default 8)")
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests in the cache trace")
    parser.add_argument("--only", nargs="*", help="sections: " + " ".join(SECTIONS))
    parser.add_argument(
        "--write",
        action="store_true",
        help="with --only: put those sections into bench/results.json (the others kept, each with its date) "
        "and rewrite BENCHMARKS.md and the README's measured figures",
    )
    args = parser.parse_args()
    if args.write and not args.only:
        parser.error("--write goes with --only (a full run always writes)")
    unknown = sorted(set(args.only or ()) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section {', '.join(unknown)}; sections: {' '.join(SECTIONS)}")
    sections = args.only or list(SECTIONS)
    started = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "date": time.strftime("%Y-%m-%d")}
    if "transform" in sections:
        results["transform"] = transform_section(args.rounds)
    if "memory" in sections:
        results["memory"] = memory_section()
    if "cold" in sections:
        results["cold_start"] = cold_start_section()
    if "misses" in sections:
        from bench import coldmiss

        results["misses"] = coldmiss.run()
    if "cache" in sections:
        log("cache trace ...")
        results["cache"] = cache.run(args.requests)
        from bench import viewerbench

        log("viewer function in V8 ...")
        results["cache"]["viewer"] = viewerbench.run()
    if "emulator" in sections:
        results["emulator"] = emulator_section()
    if "sync" in sections:
        from bench import syncbench

        results["sync"] = syncbench.run()
    if "service" in sections:
        from bench import servicebench

        results["service_sync"] = servicebench.run()
    if "catalog" in sections:
        from bench import catalogbench

        results["catalog"] = catalogbench.run()
    if "hostile" in sections:
        results["hostile"] = hostile_section()
    if "abuse" in sections:
        from bench import abuse

        log("denial of wallet: variants per original, the worst render ...")
        results["abuse"] = abuse.run()
    if "footprint" in sections:
        from bench import footprint

        results["footprint"] = footprint.run()
    if "jxl" in sections:
        from bench import jxlbench

        results["jxl"] = jxlbench.run()
    if "quality_auto" in sections:
        from bench import quality_auto

        log("q=auto: bytes and libjxl's scores against q=60 and sharp, misses ...")
        results["quality_auto"] = quality_auto.run()
    results["seconds"] = round(time.perf_counter() - started)
    # kept before anything is formatted: a long run is never lost to a report error
    (ROOT / ".cache").mkdir(exist_ok=True)
    (ROOT / ".cache" / "bench-last.json").write_text(json.dumps(results, indent=1) + "\n")
    text = report.tables(results)
    print(text)
    if args.only and not args.write:
        log("partial run (--only): bench/results.json and BENCHMARKS.md are left as they were (--write merges)")
        return 0
    took = results["seconds"]
    if args.only:
        results = merge(json.loads((BENCH / "results.json").read_text()), results, args.only)
    (BENCH / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    (ROOT / "BENCHMARKS.md").write_text(report.markdown(results))
    from bench import figures

    changed = figures.write()
    log(f"wrote bench/results.json, BENCHMARKS.md{' and the README' if changed else ''} in {took} s")
    return 0


# The key each section writes in results.json (most are the section's name).
KEYS = {"cold": "cold_start", "service": "service_sync"}


def merge(previous: dict[str, Any], partial: dict[str, Any], sections: list[str]) -> dict[str, Any]:
    """A full run's results with `sections` replaced by a partial run's; `updated` records the date
    of each section measured after the full run (its machine must be the same: refused otherwise)."""
    # the same hardware and libraries (the kernel's build string may differ between boots)
    same = ("cpu", "cores", "python", "pillow", "libjpeg_turbo", "libwebp", "libavif", "node")
    if any(previous.get("machine", {}).get(key) != partial["machine"].get(key) for key in same):
        raise SystemExit("bench: --write: bench/results.json was measured on another machine; run make bench")
    merged = dict(previous)
    updated = dict(previous.get("updated", {}))
    for section in sections:
        key = KEYS.get(section, section)
        merged[key] = partial[key]
        updated[key] = partial["date"]
    merged["updated"] = updated
    return merged


if __name__ == "__main__":
    sys.exit(main())
