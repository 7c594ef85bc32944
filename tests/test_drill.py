"""The outage drill: steady traffic while the primary goes down, errors and comes back."""

from __future__ import annotations

import json
import subprocess
import sys

from localcdn.process import ROOT


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
