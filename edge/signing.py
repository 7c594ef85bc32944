"""Signed URLs: the Python twin of the check in edge/normalize.js, and the signer apps use.

A signed URL carries three parameters besides its own:

    kid      the id of the key that signed it (the stack holds two at a time)
    expires  optional: Unix seconds after which the URL is refused
    sig      HMAC-SHA256, lowercase hex, over the message below

The message is what decides the response, nothing else, so two URLs that render the
same variant for the same viewer sign the same way and an added parameter that
changes the variant breaks the signature:

    v1 "\\n" <path, percent-decoded> "\\n" <name=value pairs, "&"-joined, sorted by name>

where the pairs are the parameters the viewer function reads (each under its long
name: `w` counts as `width`), the first occurrence of each, percent-decoded, plus
`expires` and `kid`. Parameters the viewer function ignores (`utm_source`, a second
`w`) are not signed and cannot change the answer. `sig` itself is never signed.

The viewer function verifies with the keys in the distribution's KeyValueStore
(`signing-key-<kid>`); `sign` here is what `python -m ops sign` and apps call with the
current key from Secrets Manager. tests/cases/signing.json holds vectors both run.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

from edge.problems import Problem
from edge.variants import decode, query_params, signed_names

MODES = ("off", "optional", "required")
VERSION = "v1"
KEY_PREFIX = "signing-key-"
KID = re.compile(r"[0-9]{1,6}")
_HEX = re.compile(r"[0-9a-f]{64}")
_EXPIRES = re.compile(r"[0-9]{1,12}")


class SignatureError(Problem):
    """A signature the viewer function refuses: always a 403."""

    status = 403
    error = "InvalidSignature"


def _pairs(querystring: str) -> tuple[dict[str, str], str | None]:
    """The signed parameters (first occurrence, long name, decoded) and the raw `sig`."""
    pairs = (pair.partition("=") for pair in querystring.split("&")) if querystring else iter(())
    sig = next((value for name, _, value in pairs if name.lower() == "sig"), None)
    return query_params(querystring, signed_names()), sig


def message(path: str, querystring: str) -> str:
    """What is signed for a request path and its raw query string."""
    params, _ = _pairs(querystring)
    pairs = "&".join(f"{name}={params[name]}" for name in sorted(params))
    return f"{VERSION}\n{decode(path, 'path')}\n{pairs}"


def signature(secret: str, path: str, querystring: str) -> str:
    return hmac.new(secret.encode("utf-8"), message(path, querystring).encode("utf-8"), hashlib.sha256).hexdigest()


def sign(url: str, secret: str, kid: str, *, expires: int | None = None) -> str:
    """`url` (a path with an optional query, or an absolute URL) with kid, expires and sig appended.

    Any kid, expires or sig already in the URL is dropped first; the rest of the query is
    kept as written.
    """
    if not KID.fullmatch(kid):
        raise ValueError(f"kid must be 1-6 digits, not {kid!r}")
    head, slash, rest = ("", "", url)
    if "://" in url:
        scheme, _, after = url.partition("://")
        host, slash, rest = after.partition("/")
        head = f"{scheme}://{host}"
        rest = slash + rest
    path, _, query = rest.partition("?")
    kept = [p for p in query.split("&") if p and p.partition("=")[0].lower() not in ("kid", "expires", "sig")]
    kept.append(f"kid={kid}")
    if expires is not None:
        kept.append(f"expires={int(expires)}")
    querystring = "&".join(kept)
    digest = signature(secret, path, querystring)
    return f"{head}{path}?{querystring}&sig={digest}"


def verify(path: str, querystring: str, keys: dict[str, str], mode: str, now: float | None = None) -> bool:
    """Raise `SignatureError` (403) as the viewer function would; when the URL may pass, whether it
    was signed (a signature that verified: `variants.normalize(signed=...)`).

    `keys` maps kid -> secret (what the KeyValueStore holds). `off` never checks;
    `optional` checks only URLs that carry `sig`; `required` refuses any URL without one.
    """
    if mode == "off":
        return False
    params, sig = _pairs(querystring)
    if sig is None:
        if mode == "required":
            raise SignatureError("sig", "a signed URL (kid, sig)", "")
        return False
    kid = params.get("kid", "")
    if not KID.fullmatch(kid) or kid not in keys:
        raise SignatureError("kid", "the id of a current signing key", kid)
    if "expires" in params:
        expires = params["expires"]
        if not _EXPIRES.fullmatch(expires):
            raise SignatureError("expires", "Unix seconds", expires)
        if (time.time() if now is None else now) > int(expires):
            raise SignatureError("expires", "an expiry in the future", expires)
    expected = signature(keys[kid], path, querystring)
    if not _HEX.fullmatch(sig) or not hmac.compare_digest(expected, sig):
        raise SignatureError("sig", "a valid signature for this URL", sig)
    return True
