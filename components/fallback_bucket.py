"""FallbackBucket: pre-built standard variants in a second region."""

from __future__ import annotations

from typing import TypedDict

import pulumi

from components.buckets import HardenedBucket


class FallbackBucketArgs(TypedDict):
    """Arguments of `FallbackBucket`."""

    bucket_name: str
    """Globally unique bucket name."""
    region: str
    """A region other than the primary's (pulumi-aws 7 per-resource region)."""


class FallbackBucket(HardenedBucket):
    """The secondary origin: `<key>/w_<W>_q_<Q>.<fmt>` for the standard set only.

    Same hardening as the primary; nothing expires (the sync job keeps it full and
    removes what no longer has an original). Call `allow_distribution` once the
    distribution exists: CloudFront may then read every key.
    """

    def __init__(self, name: str, args: FallbackBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("image-cdn:index:FallbackBucket", name, args["bucket_name"], args["region"], "*", opts)
        self._done()
