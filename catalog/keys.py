"""Where uploads go, and how an original's key gives its image id.

An upload through the API lands at `originals/<id>/<safe filename>`, `<id>` a fresh
random UUID: no upload can land on a key that already holds something. The API's role
may write and delete only keys of that shape (IAM_UPLOAD_KEYS: `?` matches exactly one
character in an IAM resource), so originals put in the bucket any other way are out of
its reach. Any other original gets a name-based UUID of its key (uuid5), so its id is
known from the key alone, when it is created and when it is deleted.
"""

from __future__ import annotations

import re
import unicodedata
import uuid

from edge.settings import ORIGINAL_PREFIX
from edge.variants import SPEC

UPLOAD_TYPES = {
    "image/jpeg": (".jpg", ".jpeg"),
    "image/png": (".png",),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "image/avif": (".avif",),
    "image/heic": (".heic",),
    "image/heif": (".heif", ".hif"),
}
IAM_UPLOAD_KEYS = ORIGINAL_PREFIX + "????????-????-????-????-????????????/*"
MAX_FILENAME = 100
_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ID_PATTERN = re.compile(_ID)
_UPLOADED = re.compile(re.escape(ORIGINAL_PREFIX) + f"({_ID})/([^/]+)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Ids of originals that did not come through the API: uuid5 of the key in this namespace.
NAMESPACE = uuid.UUID("6f0c1c1e-3b8e-5b8e-9a55-1f6a1d2c3e4f")


def safe_filename(name: str, content_type: str) -> str:
    """ASCII letters, digits, `.`, `_` and `-` only, at most MAX_FILENAME long, ending in the type's extension,
    and never a variant name (`w_160_q_60.webp` becomes `image-w_160_q_60.webp`)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    stem, dot, extension = ascii_name.rpartition(".")
    if not dot:
        stem, extension = ascii_name, ""
    stem = _UNSAFE.sub("-", stem).strip("-._")[:80] or "image"
    extensions = UPLOAD_TYPES[content_type]
    suffix = "." + extension.lower() if "." + extension.lower() in extensions else extensions[0]
    name = (stem + suffix)[:MAX_FILENAME]
    if SPEC.fullmatch(name):
        # `<id>/w_160_q_60.webp` would read as a variant of `<id>`: no URL could reach the upload.
        name = "image-" + name
    return name


def new_upload(filename: str, content_type: str) -> tuple[str, str]:
    """A fresh (id, key) for an upload."""
    image_id = str(uuid.uuid4())
    return image_id, f"{ORIGINAL_PREFIX}{image_id}/{safe_filename(filename, content_type)}"


def uploaded_id(key: str) -> str | None:
    """The id of an original that came through the API (its key has the upload shape), else None."""
    match = _UPLOADED.fullmatch(key)
    return match.group(1) if match else None


def fallback_id(key: str) -> str:
    """The uuid5 of the key: the id of an original that did not come through the API (or whose
    upload id another original of the same folder already has)."""
    return str(uuid.uuid5(NAMESPACE, key))


def image_id(key: str) -> str:
    """The id of the original at `key`: its upload id, else the uuid5 of the key."""
    return uploaded_id(key) or fallback_id(key)


def filename_of(key: str) -> str:
    return key.rsplit("/", 1)[-1]
