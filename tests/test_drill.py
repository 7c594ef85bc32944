"""The outage drill: steady traffic while the primary goes down, errors and comes back."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from localcdn.process import ROOT, Emulator
from ops import drill


def test_an_outage_drill_loses_no_standard_variant() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops",
            "drill",
            "--stack",
            "dev",
            "--seconds",
            "12",
            "--clients",
            "2",
            "--expire-every",
            "1.5",
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    drill = json.loads(result.stdout)
    rows = {(row["phase"], row["kind"]): row for row in drill["report"]}
    assert {phase for phase, _ in rows} == {"1:up", "2:down", "3:error", "4:up"}
    for (phase, kind), row in rows.items():
        assert row["failed"] == 0, (phase, kind, row)  # non-standard ones too: nearest standard instead
        assert row["served"] == row["requests"] > 0
        if phase in ("2:down", "3:error"):
            assert row["primary"] == 0 and row["fallback"] > 0, (phase, kind, row)
        else:
            assert row["fallback"] == 0 and row["primary"] > 0, (phase, kind, row)


class Terminal(io.StringIO):
    """stderr as a terminal (tqdm draws its bar only on one)."""

    def isatty(self) -> bool:
        return True


def test_the_drill_shows_its_phase_and_counts_while_it_runs(cdn: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    result = drill.run(cdn.base, (320, 640), 4, 1, 1, progress=True)
    shown = screen.getvalue()
    for state in drill.PHASES:
        assert f"drill: primary {state}" in shown
    assert "served=" in shown and "failed=" in shown
    assert sum(row["requests"] for row in result["report"]) > 0


def test_without_a_terminal_or_with_json_the_drill_draws_nothing(
    cdn: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stderr", screen)
    drill.run(cdn.base, (320, 640), 1, 1, 1, progress=True)
    assert screen.getvalue() == ""
