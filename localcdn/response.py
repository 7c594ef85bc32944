"""What the emulated distribution answers: one response, as the viewer gets it.

Its own module so that `localcdn/ranges.py`, which `localcdn/distribution.py` calls, can name
it without importing the distribution back (tests/test_layout.py: no import cycles).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    origin: str | None = None
    timing: list[str] = field(default_factory=list)
