"""The stack's configuration: read once, validated, turned into one typed object.

Where each rule lives:

- components/config/read.py: where the raw values come from (`pulumi up`'s runtime, or
  `Pulumi.<stack>.yaml` for the tests, the emulator and the operator commands);
- components/config/validate.py: every key's rule (`KEYS`, `load`): what is accepted, what a
  bad value's message says;
- components/config/derive.py: what the checked config derives (`StackConfig.edge_settings()`,
  the regions Lambda@Edge logs in), and the facts of the deployed stack its local stand-ins repeat
  (the failover status codes, the signing secret's name).

None of them imports the Pulumi SDK but `from_pulumi`, when called. The names below are the
package's public ones (`from components.config import from_stack_file`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from components.config import read
from components.config.derive import EDGE_LOG_REGIONS, PRICE_CLASSES, StackConfig, edge_log_regions
from components.config.read import NAMESPACE, ROOT, split_namespaces
from components.config.validate import KEYS, LOG_RETENTION_DAYS, SOURCE_KINDS, ConfigError, load

__all__ = [
    "EDGE_LOG_REGIONS",
    "KEYS",
    "LOG_RETENTION_DAYS",
    "NAMESPACE",
    "PRICE_CLASSES",
    "ROOT",
    "SOURCE_KINDS",
    "ConfigError",
    "StackConfig",
    "edge_log_regions",
    "from_pulumi",
    "from_stack_file",
    "load",
    "split_namespaces",
]


def from_stack_file(
    stack: str, project: str = NAMESPACE, root: Path = ROOT, overrides: Mapping[str, Any] | None = None
) -> StackConfig:
    """The config of `Pulumi.<stack>.yaml`, exactly as `pulumi up` would see it; `overrides`
    (`{"catalogAuth": "jwt"}`) as `pulumi config set` would change it."""
    return load(read.stack_file(stack, project, root, overrides), project=project, stack=stack)


def from_pulumi() -> StackConfig:
    """The running stack's config (what `pulumi preview`/`up` passes to the program)."""
    values, project, stack = read.running()
    return load(values, project=project, stack=stack)
