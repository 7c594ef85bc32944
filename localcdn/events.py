"""CloudFront's Lambda@Edge event shapes (origin-request and origin-response, S3 origins).

As documented in "Lambda@Edge event structure"; the emulator invokes the handlers with
exactly these, and the tests do too.
"""

from __future__ import annotations

import copy
from typing import Any

from edge.problems import header_list

CONFIG = {"distributionDomainName": "d111111abcdef8.cloudfront.net", "distributionId": "EDFDVBD6EXAMPLE"}


def s3_origin(domain_name: str, region: str, path: str = "") -> dict[str, Any]:
    return {
        "s3": {
            "authMethod": "none",  # OAC signs after the function; OAI would say origin-access-identity
            "customHeaders": {},
            "domainName": domain_name,
            "path": path,  # the origin's path, as configured on the distribution
            "region": region,
        }
    }


def custom_origin(domain_name: str) -> dict[str, Any]:
    """A custom (HTTP) origin as Lambda@Edge sees it ("Lambda@Edge event structure", origin request)."""
    return {
        "custom": {
            "customHeaders": {},
            "domainName": domain_name,
            "keepaliveTimeout": 5,
            "path": "",
            "port": 443,
            "protocol": "https",
            "readTimeout": 30,
            "sslProtocols": ["TLSv1.2"],
        }
    }


def origin_request(
    uri: str,
    domain_name: str,
    region: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    client_ip: str = "203.0.113.178",
    path: str = "",
    custom: bool = False,
) -> dict[str, Any]:
    request = {
        "clientIp": client_ip,
        "headers": header_list({"Host": domain_name, "User-Agent": "Amazon CloudFront", **(headers or {})}),
        "method": method,
        "origin": custom_origin(domain_name) if custom else s3_origin(domain_name, region, path),
        "querystring": "",
        "uri": uri,
    }
    return {
        "Records": [
            {
                "cf": {
                    "config": {
                        **CONFIG,
                        "eventType": "origin-request",
                        "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
                    },
                    "request": request,
                }
            }
        ]
    }


def origin_response(
    forwarded: dict[str, Any], status: int, headers: dict[str, str] | None = None, description: str = ""
) -> dict[str, Any]:
    """The event origin-response gets: the request as forwarded, and what the origin said."""
    return {
        "Records": [
            {
                "cf": {
                    "config": {
                        **CONFIG,
                        "eventType": "origin-response",
                        "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
                    },
                    "request": copy.deepcopy(forwarded),
                    "response": {
                        "status": str(status),
                        "statusDescription": description,
                        "headers": header_list(headers or {}),
                    },
                }
            }
        ]
    }
