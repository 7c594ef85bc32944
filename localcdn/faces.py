"""A local stand-in for Amazon Rekognition's DetectFaces, for `crop=faces` in the emulator.

NOT Rekognition and not a face detector: it answers DetectFaces' shape (FaceDetails with a
BoundingBox of fractions, as in the DetectFaces API reference) with the bounding box of the
largest patch of skin-toned pixels, which is enough to see the crop follow a person in a
photo. What the deployed function does with the answer (and with no answer, or an error:
the attention crop) is the same code either way. `available = False` makes every call
fail, as a timeout or throttling would.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

_CELLS = 24


class LocalRekognition:
    """`detect_faces(Image={"Bytes": ...})` answered by a skin-tone heuristic (see module docstring)."""

    label = "local stand-in (skin-tone patches), not Amazon Rekognition"

    def __init__(self) -> None:
        self.available = True
        self.calls = 0

    def __call__(self, region: str) -> LocalRekognition:  # the client factory resize takes
        return self

    def detect_faces(self, *, Image: dict[str, bytes], Attributes: list[str] | None = None) -> dict[str, Any]:
        self.calls += 1
        if not self.available:
            raise ConnectionError("the local Rekognition stand-in is switched off")
        return {"FaceDetails": [{"BoundingBox": box, "Confidence": 50.0} for box in _skin_patches(Image["Bytes"])]}


def _skin_patches(data: bytes) -> list[dict[str, float]]:
    picture = Image.open(io.BytesIO(data)).convert("YCbCr")
    picture.thumbnail((_CELLS * 8, _CELLS * 8))
    width, height = picture.size
    cols, rows = max(1, width // 8), max(1, height // 8)
    cells = picture.resize((cols * 8, rows * 8))
    _, cb, cr = cells.split()
    skin = [77 <= b <= 127 and 133 <= r <= 173 for b, r in zip(cb.tobytes(), cr.tobytes(), strict=True)]
    mask = [[False] * cols for _ in range(rows)]
    for row in range(rows):
        for col in range(cols):
            hits = sum(skin[(row * 8 + y) * cols * 8 + col * 8 + x] for y in range(8) for x in range(8))
            mask[row][col] = hits >= 32
    seen: set[tuple[int, int]] = set()
    best: list[tuple[int, int]] = []
    for start in ((r, c) for r in range(rows) for c in range(cols) if mask[r][c]):
        if start in seen:
            continue
        patch, stack = [], [start]
        seen.add(start)
        while stack:
            r, c = stack.pop()
            patch.append((r, c))
            for nr, nc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= nr < rows and 0 <= nc < cols and mask[nr][nc] and (nr, nc) not in seen:
                    seen.add((nr, nc))
                    stack.append((nr, nc))
        if len(patch) > len(best):
            best = patch
    if len(best) < 2:
        return []
    top, bottom = min(r for r, _ in best), max(r for r, _ in best) + 1
    left, right = min(c for _, c in best), max(c for _, c in best) + 1
    return [{"Left": left / cols, "Top": top / rows, "Width": (right - left) / cols, "Height": (bottom - top) / rows}]
