"""image-cdn as a Pulumi package: the components every Pulumi language can use.

`provider/` hosts them with Pulumi's component provider (`pulumi.provider.experimental`), which
infers the schema from the components' type annotations; the package's provider then marks the
inputs that hold a key or a credential secret (`SECRET_INPUTS`). `python -m components.package`
writes that schema to `schema.json` (`make schema`); a test regenerates it and compares.
"""

import inspect
import json
import sys
import tomllib
from pathlib import Path
from typing import Any

import pulumi
from pulumi.provider.experimental.analyzer import ComponentDefinition
from pulumi.provider.experimental.component import ComponentProvider

from components.catalog import ImageCatalog
from components.distribution import FailoverDistribution
from components.edge_functions import EdgeFunctions
from components.fallback_bucket import FallbackBucket
from components.firewall import EdgeFirewall
from components.image_origin import ImageOrigin
from components.monitoring import Monitoring
from components.read_grant import DistributionReadGrant
from components.signing import UrlSigning
from components.sync_job import SyncJob
from components.wire import integers

NAME = "image-cdn"
ROOT = Path(__file__).resolve().parent.parent
SCHEMA = ROOT / "schema.json"

# Inputs that hold a key, a password or a credential (a chat webhook's URL is one), by component and
# Python name: `"secret": true` in the schema ("Specifies whether the property is secret", Pulumi
# package schema, Property), so that another language's generated SDK makes the value a secret
# before it reaches the engine, and the state keeps it encrypted. Pulumi 3.272's analyzer cannot say
# so: it infers a property's type, optionality and description from the annotations, and its
# PropertyDefinition has no secret field (pulumi.provider.experimental.analyzer); the provider
# marks these after the analysis, in the schema it serves (`pulumi package add` reads that one).
# A property that only names a secret (`signing_secret_arn`, SyncJob's `service_key_secret`: the name
# or ARN of the secret its function reads at run time) is not one.
SECRET_INPUTS: dict[str, frozenset[str]] = {
    "EdgeFunctions": frozenset({"service_key"}),
    "Monitoring": frozenset({"webhooks"}),
}

COMPONENTS: list[type[pulumi.ComponentResource]] = [
    ImageOrigin,
    FallbackBucket,
    DistributionReadGrant,
    EdgeFunctions,
    FailoverDistribution,
    EdgeFirewall,
    UrlSigning,
    SyncJob,
    ImageCatalog,
    Monitoring,
]


def version() -> str:
    """The package's version: pyproject's, which each release tag (`v<version>`) carries."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return str(tomllib.load(f)["project"]["version"])


class ImageCdnProvider(ComponentProvider):
    """Pulumi's component provider, with the wire's numbers made integers where an int is declared
    (components/wire.py): once, where another language's inputs become a component's args; and with
    the inputs of `SECRET_INPUTS` secret in the schema it serves."""

    def __init__(self, components: list[type[pulumi.ComponentResource]], name: str, version: str) -> None:
        super().__init__(components, name, version=version)
        self.schema = json.dumps(mark_secrets(json.loads(self.schema or "{}"), self._component_defs, name))

    def map_inputs(self, inputs: Any, component_def: ComponentDefinition) -> Any:
        mapped = super().map_inputs(inputs, component_def)
        args = inspect.get_annotations(self._components[component_def.name].__init__)["args"]
        return integers(mapped, args)


def mark_secrets(spec: dict[str, Any], definitions: dict[str, ComponentDefinition], name: str) -> dict[str, Any]:
    """`spec` with `"secret": true` on every input of SECRET_INPUTS; a name no component has is an error."""
    for component, python_names in SECRET_INPUTS.items():
        definition = definitions[component]
        schema_names = {python: schema for schema, python in definition.inputs_mapping.items()}
        unknown = sorted(python_names - set(schema_names))
        if unknown:
            raise ValueError(f"SECRET_INPUTS: {component} has no input {', '.join(unknown)}")
        properties = spec["resources"][f"{name}:index:{component}"]["inputProperties"]
        for python in sorted(python_names):
            properties[schema_names[python]]["secret"] = True
    return spec


def provider() -> ImageCdnProvider:
    return ImageCdnProvider(COMPONENTS, NAME, version=version())


def schema() -> dict[str, Any]:
    """The package schema, as the provider serves it to `pulumi package add`."""
    return dict(json.loads(provider().schema or "{}"))


def render() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not SCHEMA.exists() or SCHEMA.read_text(encoding="utf-8") != text:
            print("schema.json is out of date: run `make schema`", file=sys.stderr)
            return 1
        return 0
    SCHEMA.write_text(text, encoding="utf-8")
    print(f"wrote {SCHEMA.name}: {len(schema()['resources'])} components")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
