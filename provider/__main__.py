"""Hosts image-cdn's components as a Pulumi package (PulumiPlugin.yaml beside this file).

Pulumi runs this directory when a program in another language uses the package; the components
live one level up, so that directory goes on the import path first.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.provider.experimental import component_provider_host

from components.package import COMPONENTS, NAME, version

if __name__ == "__main__":
    component_provider_host(COMPONENTS, NAME, version=version())
