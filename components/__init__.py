"""image-cdn's Pulumi components; import any one into your own program.

from components import ImageOrigin, FallbackBucket, EdgeFunctions, FailoverDistribution, ImageCatalog
"""

from components.catalog import ImageCatalog, ImageCatalogArgs
from components.distribution import FailoverDistribution, FailoverDistributionArgs
from components.edge_functions import EdgeFunctions, EdgeFunctionsArgs
from components.fallback_bucket import FallbackBucket, FallbackBucketArgs
from components.firewall import EdgeFirewall, EdgeFirewallArgs
from components.image_origin import ImageOrigin, ImageOriginArgs
from components.sync_job import SyncJob, SyncJobArgs

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
