"""What the emulator's front refuses before it does anything: a request for another host, and a
browser page on another site driving the controls.

The emulator listens on loopback and everything it serves is unauthenticated on purpose (that
is what makes it a tool), so two things a web page could do from a newcomer's browser are closed:

- DNS rebinding: a page on `evil.example` whose name is then made to resolve to 127.0.0.1 is
  same-origin with the emulator as far as the browser knows, and could read and drive all of it.
  Its requests carry `Host: evil.example[:port]`: only the names the emulator answers for are
  served (127.0.0.1, localhost and [::1] at its port, and the `--host` it was started with), on
  every path.
- cross-site requests: a page on any site may send a POST, PUT or DELETE to 127.0.0.1 without
  reading the answer (a form, or fetch in no-cors mode), enough to take the primary down, empty
  the cache, upload, or have a URL signed. Browsers name the page's origin in `Origin` on every
  such request, and in `Sec-Fetch-Site` how it relates to the target: a state-changing
  `/_localcdn/` request, and `/_localcdn/sign` whatever its method, is served only with no
  `Origin` (curl, `python -m ops`) or the emulator's own, and never when `Sec-Fetch-Site` says
  the page is another origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

CONTROL = "/_localcdn/"
# The S3 browser-upload front. Its signer's secret is public (the emulator's API key, `local`), so a
# page anywhere could write a policy of its own and store what it likes with a plain form POST (no
# preflight): only pages served from loopback (the gallery, or an app on another local port) upload.
UPLOADS = "/_s3/"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
# Sec-Fetch-Site (Fetch Metadata): what a request made by a page of this emulator, or by no page
# at all (a typed URL, a bookmark), says; `same-site` and `cross-site` come from other origins.
OWN_FETCH_SITES = ("same-origin", "none")
# Reads that change nothing but still hand out something a page elsewhere must not get.
ALWAYS_CHECKED = ("sign",)


@dataclass(frozen=True)
class Refused:
    """A request the guard turns away: status and the project's error fields."""

    status: int
    parameter: str
    expected: str
    received: object
    error: str


def authority(host: str, port: int) -> str:
    """`host:port` as a Host header names it (an IPv6 address in brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host.lower()}:{port}"


def served_hosts(host: str, port: int) -> tuple[str, ...]:
    """The Host header values the emulator answers for: the loopback names at its port and the
    address it was started on (`--host`), each also without the port when that is 80."""
    names = [*LOOPBACK_NAMES, host]
    hosts = [authority(name, port) for name in names]
    if port == 80:  # a browser leaves the default port out of Host and Origin
        hosts += [authority(name, port).rsplit(":", 1)[0] for name in names]
    return tuple(dict.fromkeys(hosts))


class Guard:
    """The checks, for an emulator listening on `host`:`port`."""

    def __init__(self, host: str, port: int):
        self.hosts = served_hosts(host, port)

    def host(self, values: Sequence[str]) -> Refused | None:
        """Why the request's Host is refused (absent, repeated, or a name not served), or None."""
        if len(values) == 1 and values[0].lower() in self.hosts:
            return None
        return Refused(
            403,
            "Host",
            "one of " + ", ".join(self.hosts) + " (a name this emulator answers for: DNS rebinding is refused)",
            values[0] if len(values) == 1 else list(values),
            "HostNotServed",
        )

    def origin(
        self, method: str, path: str, host: str, origins: Sequence[str], fetch_sites: Sequence[str]
    ) -> Refused | None:
        """Why a `/_localcdn/` request from another origin is refused, or None to serve it. `host`:
        the request's Host, already accepted by `host()`."""
        if path.startswith(UPLOADS):
            return self._upload(method, origins, fetch_sites)
        if not path.startswith(CONTROL):
            return None
        endpoint = path[len(CONTROL) :].split("/", 1)[0].split("?", 1)[0]
        if method == "GET" and endpoint not in ALWAYS_CHECKED:
            return None
        own = "http://" + host.lower()
        for origin in origins:
            if origin.lower() != own:
                return Refused(
                    403,
                    "Origin",
                    f"no Origin (curl, python -m ops) or this emulator's own, {own}: "
                    "a page on another site may not drive the emulator",
                    origin,
                    "CrossOriginRefused",
                )
        for site in fetch_sites:
            if site.lower() not in OWN_FETCH_SITES:
                return Refused(
                    403,
                    "Sec-Fetch-Site",
                    "same-origin or none: a page on another site may not drive the emulator",
                    site,
                    "CrossOriginRefused",
                )
        return None

    def _upload(self, method: str, origins: Sequence[str], fetch_sites: Sequence[str]) -> Refused | None:
        if method in ("GET", "HEAD", "OPTIONS"):
            return None
        for origin in origins:
            parts = urlsplit(origin.lower())
            loopback = parts.scheme in ("http", "https") and (parts.hostname or "") in ("127.0.0.1", "localhost", "::1")
            if not loopback:
                return Refused(
                    403,
                    "Origin",
                    "a page served from this machine (127.0.0.1, localhost or [::1], any port): "
                    "a page on another site may not upload to the emulator",
                    origin,
                    "CrossOriginRefused",
                )
        if not origins and any(site.lower() == "cross-site" for site in fetch_sites):
            return Refused(
                403,
                "Sec-Fetch-Site",
                "a page served from this machine: a page on another site may not upload to the emulator",
                "cross-site",
                "CrossOriginRefused",
            )
        return None
