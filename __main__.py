"""image-cdn: reads the stack's config once and wires the components (components/stack.py)."""

import pulumi

from components.config import ConfigError, from_pulumi
from components.stack import build

try:
    config = from_pulumi()
except ConfigError as error:
    raise pulumi.RunError(str(error)) from None

for name, value in build(config).items():
    pulumi.export(name, value)
