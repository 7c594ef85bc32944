"""image-cdn's Pulumi components; import any one into your own program.

from components import ImageOrigin, FallbackBucket, EdgeFunctions, FailoverDistribution, ImageCatalog

The components load on first use (PEP 562): `components.config` (the stack's config, read,
validated and derived: components/config/), which the emulator and the operator commands read,
does not import the Pulumi SDK, and `make serve` does not install it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.catalog import ImageCatalog, ImageCatalogArgs
    from components.distribution import FailoverDistribution, FailoverDistributionArgs
    from components.edge_functions import EdgeFunctions, EdgeFunctionsArgs
    from components.fallback_bucket import FallbackBucket, FallbackBucketArgs
    from components.firewall import EdgeFirewall, EdgeFirewallArgs
    from components.image_origin import ImageOrigin, ImageOriginArgs
    from components.sync_job import SyncJob, SyncJobArgs

_WHERE = {
    "EdgeFirewall": "firewall",
    "EdgeFirewallArgs": "firewall",
    "EdgeFunctions": "edge_functions",
    "EdgeFunctionsArgs": "edge_functions",
    "FailoverDistribution": "distribution",
    "FailoverDistributionArgs": "distribution",
    "FallbackBucket": "fallback_bucket",
    "FallbackBucketArgs": "fallback_bucket",
    "ImageCatalog": "catalog",
    "ImageCatalogArgs": "catalog",
    "ImageOrigin": "image_origin",
    "ImageOriginArgs": "image_origin",
    "SyncJob": "sync_job",
    "SyncJobArgs": "sync_job",
}

__all__ = [
    "EdgeFirewall",
    "EdgeFirewallArgs",
    "EdgeFunctions",
    "EdgeFunctionsArgs",
    "FailoverDistribution",
    "FailoverDistributionArgs",
    "FallbackBucket",
    "FallbackBucketArgs",
    "ImageCatalog",
    "ImageCatalogArgs",
    "ImageOrigin",
    "ImageOriginArgs",
    "SyncJob",
    "SyncJobArgs",
]
assert sorted(__all__) == sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    return getattr(importlib.import_module(f"components.{module}"), name)
