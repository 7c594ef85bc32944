"""Benchmark inputs: sharp's own benchmark photo when ../shared/images is present, generated photos
otherwise (and always for the large sizes), cached under .cache/bench/."""

from __future__ import annotations

from pathlib import Path

from localcdn import samples

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".cache" / "bench"


def cached(name: str, make: object) -> Path:
    path = CACHE / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        data = make() if callable(make) else b""
        path.write_bytes(data)
    return path


def sharp_photo() -> tuple[Path, str]:
    """(path, where it came from): sharp's 2725x2225 benchmark JPEG, or a generated stand-in."""
    shared = samples.shared_images()
    if shared is not None and (shared / "sharp-bench-2725x2225.jpg").exists():
        return shared / "sharp-bench-2725x2225.jpg", "sharp's benchmark photo (../shared/images)"
    path = cached("generated-2725x2225.jpg", lambda: samples.jpeg(samples.photo(2725, 2225, seed=11), quality=92))
    return path, "GENERATED stand-in: ../shared/images is absent, numbers are not comparable to sharp's published ones"


def photo(megapixels: int, fmt: str = "jpeg") -> Path:
    """A generated photo of 12, 24 or 48 MP (4:3 or 3:2)."""
    width, height = {12: (4000, 3000), 24: (6000, 4000), 48: (8000, 6000)}[megapixels]
    if fmt == "png":
        return cached(f"photo-{megapixels}mp.png", lambda: samples.png(samples.photo(width, height, seed=megapixels)))
    return cached(f"photo-{megapixels}mp.jpg", lambda: samples.jpeg(samples.photo(width, height, seed=megapixels)))
