"""Reading the stack's config: from `pulumi up`'s runtime, or from `Pulumi.<stack>.yaml`.

Components never call `pulumi.Config`; `__main__.py` calls `from_pulumi()` and the tests and the
emulator call `from_stack_file()` on the same `Pulumi.<stack>.yaml`, so every consumer sees the
same values. Both hand the raw values (the project's namespace dropped) to
components/config/validate.py's `load`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

NAMESPACE = "image-cdn"
ROOT = Path(__file__).resolve().parents[2]


def split_namespaces(config: Mapping[str, Any], project: str) -> dict[str, Any]:
    """`{"image-cdn:widths": .., "aws:region": ..}` -> the mapping `load` takes."""
    values: dict[str, Any] = {}
    for full_key, value in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace in (project, NAMESPACE):
            values[key] = value
        elif full_key == "aws:region":
            values[full_key] = value
    return values


def stack_file(
    stack: str, project: str = NAMESPACE, root: Path = ROOT, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The raw values of `Pulumi.<stack>.yaml`, exactly as `pulumi up` would see them; `overrides`
    (`{"catalogAuth": "jwt"}`) as `pulumi config set` would change them."""
    import yaml

    path = root / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(path.read_text()) or {}
    return {**split_namespaces(document.get("config") or {}, project), **(overrides or {})}


def running() -> tuple[dict[str, Any], str, str]:
    """The running stack's raw values, project and stack (what `pulumi preview`/`up` passes to the program)."""
    import pulumi
    import pulumi.runtime.config as runtime_config

    project, stack = pulumi.get_project(), pulumi.get_stack()
    return split_namespaces(runtime_config.CONFIG.get(), project), project, stack
