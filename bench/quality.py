"""SSIM (luma, 7x7 window) against a reference rendered from the full-resolution decode."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def _luma(image: Image.Image) -> np.ndarray:
    values: np.ndarray = np.asarray(image.convert("L"), dtype=np.float64)
    return values


def _mean(values: np.ndarray, radius: int = 3) -> np.ndarray:
    size = 2 * radius + 1
    padded = np.pad(values, ((radius + 1, radius), (radius + 1, radius)), mode="edge")
    summed = np.cumsum(np.cumsum(padded, 0), 1)
    window: np.ndarray = (
        summed[size:, size:] - summed[:-size, size:] - summed[size:, :-size] + summed[:-size, :-size]
    ) / size**2
    return window


def ssim(a: Image.Image, b: Image.Image) -> float:
    x, y = _luma(a), _luma(b.resize(a.size) if b.size != a.size else b)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _mean(x), _mean(y)
    sxx, syy, sxy = _mean(x * x) - mx * mx, _mean(y * y) - my * my, _mean(x * y) - mx * my
    return float((((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))).mean())


def reference(source: Path, size: tuple[int, int]) -> Image.Image:
    """The source, decoded whole, oriented, cover-cropped and Lanczos-resized to `size`."""
    image = ImageOps.exif_transpose(Image.open(io.BytesIO(source.read_bytes()))).convert("RGB")
    return ImageOps.fit(image, size, Image.Resampling.LANCZOS)


def score(source: Path, outputs: dict[str, Path]) -> dict[str, float]:
    """SSIM of each peer's output against one shared reference."""
    decoded = {peer: Image.open(path) for peer, path in outputs.items()}
    size = next(iter(decoded.values())).size
    ref = reference(source, size)
    return {peer: round(ssim(ref, image.convert("RGB")), 4) for peer, image in decoded.items()}
