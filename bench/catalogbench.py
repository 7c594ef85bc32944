"""The catalogue's numbers (make bench, section "catalog").

Metadata: `catalog.metadata.extract` on 24 MP camera JPEGs, with the thumbnail every
camera writes into EXIF (the first 256 KB are read) and without one (the file is read
and decoded whole), beside sharp and pyvips doing what a placeholder needs from the same
file (header, then a 32-pixel sample; neither reads EXIF thumbnails, so they decode the
whole file). Bytes are read from memory: S3's latency is not in these numbers.

Tag query: 10,000 generated images (each with one to three of 20 tags) seeded into the
emulator's DynamoDB, then one page of a tag (20 items, a random tag and depth) asked
for through the emulator's API over HTTP, SigV4-signed, as a client would; the same
queries through `catalog.store` give DynamoDB's ScannedCount of each page.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import inputs
from localcdn import samples

ROOT = Path(__file__).resolve().parents[1]
ITEMS = 10_000
TAGS = [f"tag-{n:02d}" for n in range(20)]
PAGE = 20
REGION = "eu-west-1"  # the dev stack's primary region


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def camera_photos() -> dict[str, Path]:
    """24 MP camera JPEGs of a realistic size (camera-like detail), with and without an EXIF thumbnail."""
    from PIL import Image

    def make(thumbnail: bool) -> bytes:
        photo = samples.photo(6000, 4000, seed=24)
        noisy = Image.blend(photo, Image.effect_noise(photo.size, 60).convert("RGB"), 0.3)
        return samples.camera_jpeg(noisy, quality=92, thumbnail=thumbnail, orientation=1)

    return {
        "24 MP JPEG, EXIF thumbnail": inputs.cached("camera-24mp-thumb.jpg", lambda: make(True)),
        "24 MP JPEG, no thumbnail": inputs.cached("camera-24mp-nothumb.jpg", lambda: make(False)),
    }


def ours(path: Path, rounds: int) -> dict[str, Any]:
    from catalog import metadata
    from edge import imaging

    data = path.read_bytes()
    limits = imaging.Limits(max_input_bytes=100 * 1024 * 1024)
    read = 0

    def reader(start: int, end: int) -> bytes:
        nonlocal read
        read += end - start
        return data[start:end]

    metadata.extract(reader, len(data), limits)  # warm-up
    ms = []
    for _ in range(rounds):
        read = 0
        started = time.perf_counter()
        metadata.extract(reader, len(data), limits)
        ms.append((time.perf_counter() - started) * 1000)
    return {"ms": ms, "bytes_read": read, "bytes": len(data)}


def metadata_section(rounds: int = 15) -> dict[str, Any]:
    from bench.proc import ensure_sharp, worker

    photos = camera_photos()
    rows = []
    node = ensure_sharp()
    sharp: dict[str, Any] = {}
    if node is not None:
        answer = subprocess.run(
            [node, str(ROOT / "bench" / "sharp_metadata.js"), str(rounds), *map(str, photos.values())],
            cwd=ROOT / "bench",
            capture_output=True,
            text=True,
            check=True,
        )
        sharp = json.loads(answer.stdout)["results"]
    vips = worker("vips-metadata", str(rounds), *map(str, photos.values()), env={"VIPS_CONCURRENCY": "1"})
    for name, path in photos.items():
        log(f"catalog: metadata of {name} ...")
        measured = ours(path, rounds)
        row: dict[str, Any] = {
            "input": name,
            "file_mb": round(measured["bytes"] / 1e6, 1),
            "read_kb": round(measured["bytes_read"] / 1024),
            "ours_ms": round(statistics.median(measured["ms"]), 1),
            "pyvips_ms": round(statistics.median(vips[str(path)]["sample_ms"]), 1),
        }
        if sharp:
            row["sharp_ms"] = round(statistics.median(sharp[str(path)]["sample_ms"]), 1)
            row["sharp_header_ms"] = round(statistics.median(sharp[str(path)]["metadata_ms"]), 2)
            row["ours_ratio"] = round(row["ours_ms"] / row["sharp_ms"], 2)
            row["pyvips_ratio"] = round(row["pyvips_ms"] / row["sharp_ms"], 2)
        rows.append(row)
    return {"rounds": rounds, "rows": rows}


def _item(index: int, rng: random.Random) -> dict[str, Any]:
    import uuid

    width = rng.choice((640, 1024, 1600, 2400, 4000, 6000))
    stamp = 1_760_000_000 + index * 37
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{index % 1000:03d}Z"
    image_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return {
        "id": image_id,
        "key": f"originals/{image_id}/photo-{index}.jpg",
        "filename": f"photo-{index}.jpg",
        "status": "ready",
        "width": width,
        "height": width * 2 // 3,
        "format": "jpeg",
        "bytes": width * 900,
        "animated": False,
        "alpha": False,
        "tags": rng.sample(TAGS, rng.randint(1, 3)),
        "uploaded_at": when,
        "modified": when,
        "colour": "#4a6b8c",
        "blurhash": "LEHV6nWB2yk8pyo0adR*.7kCMdnj",
        "placeholder": "data:image/png;base64," + "A" * 480,  # the size of a real one
        "owner": "arn:aws:iam::123456789012:user/bench",
        "etag": "0" * 32,
    }


def query_section(queries: int = 300) -> dict[str, Any]:
    import boto3
    import requests

    from catalog.store import Catalogue
    from localcdn.catalog import sign_sigv4
    from localcdn.process import Emulator

    log("catalog: starting the emulator ...")
    emulator = Emulator()
    try:
        dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=emulator.s3_endpoint,  # moto's server: S3 and DynamoDB alike
            region_name=REGION,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        catalogue = Catalogue(dynamodb, "image-cdn-dev-catalog")
        rng = random.Random(12)
        log(f"catalog: seeding {ITEMS:,} images ...")
        started = time.perf_counter()
        written = catalogue.seed([_item(i, rng) for i in range(ITEMS)])
        seeded_s = time.perf_counter() - started
        http = requests.Session()
        ms: list[float] = []
        scanned: list[int] = []
        returned: list[int] = []
        cursors: dict[str, list[str | None]] = {tag: [None] for tag in TAGS}
        log(f"catalog: {queries} tag queries through the API ...")
        for index in range(queries):
            tag = TAGS[index % len(TAGS)]
            cursor = rng.choice(cursors[tag])
            query = f"tag={tag}&limit={PAGE}" + (f"&cursor={cursor}" if cursor else "")
            url = f"{emulator.base}/api/images?{query}"
            headers = sign_sigv4("GET", url, b"", REGION, access_key="bench")
            began = time.perf_counter()
            answer = http.get(url, headers=headers, timeout=30)
            ms.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            returned.append(len(page["images"]))
            if page["cursor"] and len(cursors[tag]) < 20:
                cursors[tag].append(page["cursor"])
            direct = catalogue.query(tag=tag, limit=PAGE, cursor=cursor)
            scanned.append(direct.scanned)
    finally:
        emulator.stop()
    ms.sort()
    return {
        "items": ITEMS,
        "written": written,
        "seeded_s": round(seeded_s, 1),
        "tags": len(TAGS),
        "page": PAGE,
        "queries": queries,
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(ms[int(0.95 * len(ms))], 2),
        "max_ms": round(ms[-1], 2),
        "max_scanned": max(scanned),
        "max_returned": max(returned),
    }


def run() -> dict[str, Any]:
    os.environ.setdefault("VIPS_CONCURRENCY", "1")
    return {"metadata": metadata_section(), "query": query_section()}
