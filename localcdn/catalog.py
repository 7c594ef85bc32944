"""The image catalogue in the emulator: the same handlers, DynamoDB through moto, and
what API Gateway and EventBridge do around them, modelled.

What runs for real: `catalog.api` and `catalog.ingest` unchanged, against DynamoDB and
S3 in moto (the table created from `catalog.store`'s own layout), and presigned POSTs
signed by the S3 client the API uses on AWS (`catalog.api.s3_client`, for the bucket's
regional endpoint `https://<bucket>.s3.<region>.amazonaws.com/`), whose URL is then pointed
at the emulator's S3 front `/_s3/<bucket>` (`LocalS3`), where `localcdn.s3post` checks them.

What is modelled, each from AWS's documents:

- API Gateway's HTTP API: the five routes of `components/catalog.py`, each behind the
  stack's authorizer; a path or method no route declares is 404 {"message":"Not Found"};
  payload format 2.0 to the function.
- the IAM authorizer ("Control access to HTTP APIs with IAM authorization"): a SigV4
  signature of the request for the `execute-api` service, checked by recomputing it
  with botocore's signer; local credentials are any access key with the secret
  `local`, and the caller is `arn:aws:iam::<account>:user/<access key>`. A request
  that is unsigned or signed wrongly gets 403 {"message":"Forbidden"}.
- the JWT authorizer ("Control access to HTTP APIs with JWT authorizers"): the token
  (with or without `Bearer `) is decoded, its `kid` must name a key of the issuer's
  JWKS and its algorithm be RSA, its signature must verify, `iss` must equal the
  configured issuer, `aud` (or `client_id` when there is no `aud`) one of the
  audiences, `exp` after and `nbf`/`iat` before now, and a route with scopes needs one
  of them in `scope`/`scp`; otherwise 401 {"message":"Unauthorized"}. The emulator is
  the issuer here: `POST /_localcdn/token` signs tokens with its own RSA key.
- EventBridge: every write to `originals/` (the S3 front, `/_localcdn/originals/`, the
  startup uploads) is delivered as the "Object Created"/"Object Deleted" event S3 sends
  ("EventBridge event message structure"), at once and in order; AWS delivers them
  asynchronously, in any order (catalog/ingest.py is written for that).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from catalog import api, ingest
from catalog.config import ROUTES, CatalogConfig
from catalog.keys import IAM_UPLOAD_KEYS
from catalog.store import Catalogue, create_table
from components.config import StackConfig
from components.config.derive import find_secret
from localcdn import dynamo, s3post

ACCOUNT = "123456789012"
LOCAL_SECRET = "local"
# The access key the API's S3 client signs uploads with here: the emulator's own local credentials,
# standing in for the API function's role.
UPLOADER_ACCESS_KEY = "local"
# A SigV4 signature is good for 15 minutes either side of its x-amz-date.
SIGNATURE_SKEW_SECONDS = 15 * 60


class Denied(Exception):
    def __init__(self, status: int, message: str):
        self.status, self.message = status, message
        super().__init__(message)


def local_secret(access_key: str) -> str | None:
    """The emulator's credentials: any access key, with the secret `local`."""
    return LOCAL_SECRET if access_key else None


def upload_signers() -> s3post.Signers:
    """Who the emulator's S3 front takes uploads from: the API's signer alone, allowed what its role
    is allowed on AWS, PutObject at upload-shaped keys only (`originals/<uuid>/*`: components/catalog.py's
    grant, pinned by tests/test_least_privilege.py). A form signed with any other access key, or for
    any other key (`variants/...`, an original of the bucket's own), is refused as S3 refuses it."""
    return s3post.Signers({UPLOADER_ACCESS_KEY: s3post.Signer(LOCAL_SECRET, (IAM_UPLOAD_KEYS,))})


class LocalIssuer:
    """An OIDC issuer's signing half: an RSA key, its JWKS, and tokens for whoever asks."""

    def __init__(self, issuer: str, audiences: tuple[str, ...]):
        from joserfc.jwk import KeySet, RSAKey

        self.issuer, self.audiences = issuer, audiences
        self.kid = "localcdn-" + uuid.uuid4().hex[:8]
        self.key = RSAKey.generate_key(2048, parameters={"kid": self.kid})
        self.keys = KeySet([self.key])

    def token(self, sub: str, *, scope: str = "", lifetime: int = 3600, **claims: Any) -> str:
        from joserfc import jwt

        now = int(time.time())
        body = {"iss": self.issuer, "sub": sub, "aud": self.audiences[0], "iat": now, "exp": now + lifetime, **claims}
        if scope:
            body["scope"] = scope
        return str(jwt.encode({"alg": "RS256", "kid": self.kid}, body, self.key))

    def claims(self, token: str, scopes: tuple[str, ...]) -> dict[str, Any]:
        """The token's claims if API Gateway's JWT authorizer would let it through; Denied(401) otherwise."""
        from joserfc import jwt
        from joserfc.errors import JoseError

        token = token[len("Bearer ") :] if token.startswith("Bearer ") else token
        try:
            decoded = jwt.decode(token, self.keys, algorithms=["RS256", "RS384", "RS512"])
        except (JoseError, ValueError):
            raise Denied(401, "Unauthorized") from None
        claims, now = dict(decoded.claims), time.time()
        audience = claims.get("aud", claims.get("client_id"))
        audiences = audience if isinstance(audience, list) else [audience]
        ok = (
            decoded.header.get("kid") == self.kid
            and claims.get("iss") == self.issuer
            and any(a in self.audiences for a in audiences)
            and isinstance(claims.get("exp"), (int, float))
            and claims["exp"] > now
            and all(claims.get(n, 0) <= now for n in ("nbf", "iat"))
        )
        if scopes:
            granted = str(claims.get("scope") or claims.get("scp") or "").split()
            ok = ok and any(s in granted for s in scopes)
        if not ok:
            raise Denied(401, "Unauthorized")
        return claims


def verify_sigv4(method: str, url: str, headers: dict[str, str], body: bytes, region: str) -> str:
    """The caller's ARN if the request carries a valid SigV4 signature for execute-api; Denied(403) otherwise."""
    lower = {k.lower(): v for k, v in headers.items()}
    authorization = lower.get("authorization", "")
    if not authorization.startswith("AWS4-HMAC-SHA256 "):
        raise Denied(403, "Forbidden")
    parts = dict(p.strip().split("=", 1) for p in authorization[len("AWS4-HMAC-SHA256 ") :].split(",") if "=" in p)
    scope = parts.get("Credential", "").split("/")
    if len(scope) != 5 or scope[2] != region or scope[3] != "execute-api" or not parts.get("SignedHeaders"):
        raise Denied(403, "Forbidden")
    access_key, stamp = scope[0], lower.get("x-amz-date", "")
    secret = local_secret(access_key)
    try:
        signed_at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise Denied(403, "Forbidden") from None
    if secret is None or abs(time.time() - signed_at.timestamp()) > SIGNATURE_SKEW_SECONDS:
        raise Denied(403, "Forbidden")
    signed = parts["SignedHeaders"].split(";")
    lower.setdefault("host", urlsplit(url).netloc)  # what an HTTP client sends for the URL
    request = AWSRequest(method=method, url=url, data=body, headers={h: lower.get(h, "") for h in signed})
    request.context["timestamp"] = stamp
    signer = SigV4Auth(Credentials(access_key, secret, lower.get("x-amz-security-token")), "execute-api", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if parts.get("Signature") != expected:
        raise Denied(403, "Forbidden")
    return f"arn:aws:iam::{ACCOUNT}:user/{access_key}"


_S3_HOST = re.compile(r"(?:(?P<bucket>[a-z0-9.-]+)\.)?s3\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?")


def front_url(url: str, front: str, region: str) -> str:
    """The emulator's S3 front (`front`/<bucket>) for the URL an upload form is signed for: the bucket's
    regional virtual-hosted endpoint `https://<bucket>.s3.<region>.amazonaws.com/`, or, for a name
    with dots, the regional path-style `https://s3.<region>.amazonaws.com/<bucket>`. Anything else
    (the global endpoint, another Region) is a ValueError: an upload URL S3 would redirect or refuse
    is a bug the emulator must not hide."""
    parts = urlsplit(url)
    match = _S3_HOST.fullmatch(parts.hostname or "")
    if parts.scheme != "https" or match is None or match["region"] != region:
        raise ValueError(f"not an upload URL of S3's {region} endpoint: {url}")
    bucket = match["bucket"] or parts.path.strip("/").split("/")[0]
    return f"{front.rstrip('/')}/{bucket}"


class LocalS3:
    """The API function's S3 client in the emulator: upload forms signed by the client the function
    uses on AWS, their URL then pointed at the emulator's S3 front; every other call (DeleteObject)
    to the local S3. The URL is not signed (a POST's signature covers its policy only: "Calculating a
    Signature", Browser-Based Uploads Using POST), so the form signed for AWS is the form checked here."""

    def __init__(self, region: str, front: str, storage: Any):
        self.region, self.front, self.storage = region, front, storage
        self.signer = api.s3_client(region, aws_access_key_id=UPLOADER_ACCESS_KEY, aws_secret_access_key=LOCAL_SECRET)

    def generate_presigned_post(self, **kwargs: Any) -> dict[str, Any]:
        post = dict(self.signer.generate_presigned_post(**kwargs))
        post["url"] = front_url(str(post["url"]), self.front, self.region)
        return post

    def __getattr__(self, name: str) -> Any:
        if name in ("region", "front", "storage", "signer"):  # not set yet: no recursion through storage
            raise AttributeError(name)
        return getattr(self.storage, name)


def sign_sigv4(method: str, url: str, body: bytes, region: str, access_key: str = "gallery") -> dict[str, str]:
    """Headers of a request signed as `access_key` with the local secret (what an AWS SDK would send)."""
    request = AWSRequest(method=method, url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(access_key, LOCAL_SECRET), "execute-api", region).add_auth(request)
    return dict(request.headers.items())


class LocalCatalog:
    """The catalogue's table, handlers, API front and event delivery, for one emulated stack."""

    def __init__(self, config: StackConfig, endpoint: str, public_url: str):
        self.stack = config
        self.region = config.primary_region
        self.public_url = public_url.rstrip("/")
        self.api_base = self.public_url + "/api"
        self.auth = config.catalog_auth or "iam"
        self.scopes = tuple(config.catalog_jwt_scopes)
        self.issuer = (
            LocalIssuer(config.catalog_jwt_issuer or self.public_url, config.catalog_jwt_audiences or ("localcdn",))
            if self.auth == "jwt"
            else None
        )
        dynamo.install()  # moto's server runs in this process: Queries read one partition (localcdn/dynamo.py)
        local = {"aws_access_key_id": "local", "aws_secret_access_key": LOCAL_SECRET, "region_name": self.region}
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, **local)
        table = f"{config.name_prefix}-catalog"
        create_table(dynamodb, table)
        signs = config.signing != "off"
        secrets = boto3.client("secretsmanager", endpoint_url=endpoint, **local) if signs else None
        self.config = CatalogConfig(
            settings=config.edge_settings(),
            table=table,
            cdn_url=self.public_url,
            max_upload_bytes=config.max_upload_bytes,
            # the secret the emulator's LocalSigning wrote to moto (`<prefix>-signing-<suffix>`, as
            # UrlSigning names it on AWS), found by its prefix as `ops sign` finds it
            signing_secret=find_secret(secrets, config.name_prefix) if secrets is not None else "",
            secrets=secrets,
        )
        self.catalogue = Catalogue(dynamodb, table)
        self.s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            **local,
        )
        # The API's S3 client: uploads signed as on AWS, posted to the emulator's S3 front (same
        # origin as the gallery); its DeleteObject to the local S3.
        self.api_s3 = LocalS3(self.region, self.public_url + "/_s3", self.s3)
        self.failures: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # -- EventBridge ---------------------------------------------------------------------

    def deliver(self, kind: str, key: str) -> dict[str, Any]:
        """One S3 event as EventBridge hands it to the metadata function ("Object Created"/"Object Deleted")."""
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": kind,
            "source": "aws.s3",
            "account": ACCOUNT,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:s3:::{self.config.settings.primary_bucket}"],
            "detail": {
                "version": "0",
                "bucket": {"name": self.config.settings.primary_bucket},
                "object": {"key": key},
                "reason": "PutObject" if kind == "Object Created" else "DeleteObject",
            },
        }
        with self._lock:
            try:
                return ingest.handle(event, self.config, self.catalogue, self.s3)
            except Exception as error:  # as Lambda's on-failure destination would keep it
                self.failures.append({"event": event, "error": repr(error)})
                return {"failed": repr(error)}

    # -- API Gateway -----------------------------------------------------------------------

    def route_of(self, method: str, path: str) -> str | None:
        """The declared route a request matches (`{id}`: one path segment), or None."""
        for route in ROUTES:
            route_method, route_path = route.split(" ", 1)
            pattern = re.escape(route_path).replace(re.escape("{id}"), "[^/]+")
            if method == route_method and re.fullmatch(pattern, path):
                return route
        return None

    def request(self, method: str, url: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request to the HTTP API at `url` (under `/api`), as API Gateway answers it."""
        parts = urlsplit(url)
        path = parts.path[len("/api") :] or "/"
        route = self.route_of(method, path)
        if route is None:
            return _gateway(404, "Not Found")
        lower = {k.lower(): v for k, v in headers.items()}
        authorizer: dict[str, Any]
        try:
            if self.issuer is not None:
                claims = self.issuer.claims(lower.get("authorization", ""), self.scopes)
                authorizer = {"jwt": {"claims": claims, "scopes": str(claims.get("scope", "")).split() or None}}
            else:
                arn = verify_sigv4(method, url, headers, body, self.region)
                access_key = arn.rsplit("/", 1)[1]
                authorizer = {"iam": {"accessKey": access_key, "accountId": ACCOUNT, "userArn": arn}}
        except Denied as denied:
            return _gateway(denied.status, denied.message)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        event = {
            "version": "2.0",
            "routeKey": route,
            "rawPath": path,
            "rawQueryString": parts.query,
            "headers": lower,
            "queryStringParameters": query or None,
            "requestContext": {
                "accountId": ACCOUNT,
                "apiId": "localapi",
                "authorizer": authorizer,
                "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
                "routeKey": route,
                "stage": "$default",
            },
            "body": body.decode("utf-8", "replace") if body else None,
            "isBase64Encoded": False,
        }
        answer = api.handle(event, self.config, self.catalogue, self.api_s3)
        return int(answer["statusCode"]), dict(answer.get("headers") or {}), str(answer.get("body", "")).encode()

    def signed(
        self, method: str, path: str, body: bytes = b"", user: str = "gallery"
    ) -> tuple[int, dict[str, str], bytes]:
        """A request as your app's backend would send it: signed (iam) or with a token (jwt) of `user`."""
        url = self.api_base + path
        if self.issuer is not None:
            headers = {"Authorization": "Bearer " + self.issuer.token(user, scope=" ".join(self.scopes))}
            headers["Content-Type"] = "application/json"
        else:
            headers = sign_sigv4(method, url, body, self.region, access_key=user)
        return self.request(method, url, headers, body)


def _gateway(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    """API Gateway's own answer (not the function's): `{"message": ...}`."""
    return status, {"Content-Type": "application/json"}, json.dumps({"message": message}).encode()
