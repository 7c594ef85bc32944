"""The GitHub workflows say what the README says they do (they cannot run here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = Path(__file__).resolve().parents[1] / ".github" / "workflows"


def load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((WORKFLOWS / name).read_text()))


def pulumi_step(job: dict[str, Any]) -> dict[str, Any]:
    (step,) = [s for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    return dict(step["with"])


def test_main_deploys_dev_then_prod_behind_a_protected_environment() -> None:
    workflow = load("deploy.yml")
    assert workflow[True]["push"]["branches"] == ["main"]  # YAML reads the key `on` as true
    jobs = workflow["jobs"]
    assert jobs["dev"]["needs"] == "test" and jobs["prod"]["needs"] == "dev"
    assert jobs["prod"]["environment"] == "production"
    for stack in ("dev", "prod"):
        step = pulumi_step(jobs[stack])
        assert step["command"] == "up" and step["stack-name"].endswith(f"/{stack}")
        assert step["policyPacks"] == "policy"
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_pull_requests_preview_both_stacks_with_the_policy_pack() -> None:
    workflow = load("preview.yml")
    job = workflow["jobs"]["preview"]
    assert job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
    step = pulumi_step(job)
    assert step["command"] == "preview" and step["policyPacks"] == "policy"


def test_ci_runs_the_same_entry_point_as_every_machine() -> None:
    (run,) = [s["run"] for s in load("ci.yml")["jobs"]["test"]["steps"] if "run" in s]
    assert run == "bash .ci/run"
