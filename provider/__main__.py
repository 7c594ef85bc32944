"""Hosts image-cdn's components as a Pulumi package (PulumiPlugin.yaml beside this file).

Pulumi runs this directory when a program in another language uses the package; the components
live one level up, so that directory goes on the import path first.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.provider import main

from components.package import provider

if __name__ == "__main__":
    # What `component_provider_host` does, with the package's own provider class (the wire's
    # integers restored: components/package.py). Pulumi passes the engine's address in argv.
    main(provider(), sys.argv[1:])
