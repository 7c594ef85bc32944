"""Signed URLs: the same vectors against edge/signing.py and the deployed viewer function."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components import bundle
from edge import signing, variants
from edge.settings import Settings
from localcdn.kvs import KeyValueStore, KeyValueStoreError
from localcdn.viewer import ViewerFunction

TABLE = json.loads((Path(__file__).parent / "cases" / "signing.json").read_text())
KEYS: dict[str, str] = TABLE["keys"]
PRESETS = (("thumb", 160, 160, 60, "cover", "attention"),)
NOW = 1_900_000_000.0


def stack(mode: str) -> Settings:
    return Settings(signing=mode, presets=PRESETS)


def store(keys: dict[str, str]) -> KeyValueStore:
    kvs = KeyValueStore("signing")
    for kid, secret in keys.items():
        kvs.put(signing.KEY_PREFIX + kid, secret)
    return kvs


@pytest.fixture(scope="module")
def viewers() -> Iterator[dict[str, ViewerFunction]]:
    loaded = {mode: ViewerFunction(bundle.viewer_code(stack(mode)), store(KEYS)) for mode in signing.MODES}
    yield loaded
    for viewer in loaded.values():
        viewer.close()


def hand_signature(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def js(viewer: ViewerFunction, path: str, query: str, now: float = NOW) -> tuple[int, str]:
    """(status, canonical uri or the refused parameter)."""
    result = viewer.run(path, query, {"Accept": "image/webp"}, now=now)
    if "statusCode" in result:
        return int(result["statusCode"]), json.loads(result["body"]["data"])["parameter"]
    return 200, str(result["uri"])


def py(mode: str, path: str, query: str, now: float = NOW, keys: dict[str, str] = KEYS) -> tuple[int, str]:
    try:
        signing.verify(path, query, keys, mode, now=now)
        return 200, variants.normalize(path, query, "image/webp", stack(mode))
    except variants.VariantError as problem:
        return problem.status, problem.parameter
    except signing.SignatureError as problem:
        return problem.status, problem.parameter


@pytest.mark.parametrize("vector", TABLE["vectors"], ids=lambda v: v["path"] + "?" + v["query"])
def test_vectors_sign_and_verify_the_same_in_both(viewers: dict[str, ViewerFunction], vector: dict[str, Any]) -> None:
    path, query, message = vector["path"], vector["query"], vector["message"]
    assert signing.message(path, query) == message
    kid = dict(p.split("=") for p in query.split("&"))["kid"]
    sig = hand_signature(KEYS[kid], message)
    assert signing.signature(KEYS[kid], path, query) == sig
    signed = f"{query}&sig={sig}"
    for mode in ("optional", "required"):
        status, uri = js(viewers[mode], path, signed)
        assert status == 200, uri
        assert py(mode, path, signed) == (200, uri)
        wrong = f"{query}&sig={hand_signature(KEYS[kid], message + 'x')}"
        assert js(viewers[mode], path, wrong) == (403, "sig") == py(mode, path, wrong)


def test_the_runtime_stand_in_hashes_like_hashlib(viewers: dict[str, ViewerFunction]) -> None:
    viewer = viewers["off"]  # the stand-in's require('crypto'), in the function's isolate
    for key, text in (("k", ""), ("k" * 64, "é✓𝄞"), ("k" * 65, "x" * 1000), ("", "abc"), ("ключ", "a\nb")):
        expected = hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()
        call = f"require('crypto').createHmac('sha256', {json.dumps(key)}).update({json.dumps(text)}).digest('hex')"
        assert viewer.evaluate(call) == expected
        plain = f"require('crypto').createHash('sha256').update({json.dumps(text)}).digest('hex')"
        assert viewer.evaluate(plain) == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("mode", "query", "expect"),
    [
        ("off", "w=100", 200),
        ("off", "w=100&kid=1&sig=00", 200),  # off never looks
        ("optional", "w=100", 200),
        ("optional", "w=100&kid=1&sig=00", 403),
        ("required", "w=100", 403),
        ("required", "", 403),
    ],
)
def test_modes(viewers: dict[str, ViewerFunction], mode: str, query: str, expect: int) -> None:
    assert js(viewers[mode], "/x.jpg", query)[0] == expect == py(mode, "/x.jpg", query)[0]


def test_each_refusal_names_what_was_wrong(viewers: dict[str, ViewerFunction]) -> None:
    viewer = viewers["required"]
    good = signing.sign("/x.jpg?w=100", KEYS["1"], "1", expires=int(NOW) + 60)
    path, _, query = good.partition("?")
    assert js(viewer, path, query) == (200, "/x.jpg/w_160_q_60.webp")
    cases = {
        "expired": (query, NOW + 61, "expires"),
        "unknown kid": (query.replace("kid=1", "kid=7"), NOW, "kid"),
        "kid not digits": (query.replace("kid=1", "kid=a"), NOW, "kid"),
        "no kid": (query.replace("kid=1&", ""), NOW, "kid"),
        "expires not a number": (query.replace("expires=", "expires=x"), NOW, "expires"),
        "sig too short": (query[:-1], NOW, "sig"),
        "sig upper case": (query[:-64] + query[-64:].upper(), NOW, "sig"),
        "no sig": ("w=100", NOW, "sig"),
    }
    for name, (bad, now, parameter) in cases.items():
        result = viewer.run(path, bad, now=now)
        assert result["statusCode"] == 403, name
        body = json.loads(result["body"]["data"])
        assert body["error"] == "InvalidSignature" and body["parameter"] == parameter, (name, body)
        assert result["headers"]["cache-control"]["value"] == "no-store"
        assert py("required", path, bad, now=now) == (403, parameter), name


def test_two_keys_let_a_key_rotate_without_a_broken_url() -> None:
    kvs = store({"1": "old"})
    viewer = ViewerFunction(bundle.viewer_code(stack("required")), kvs)
    old = signing.sign("/x.jpg?w=100", "old", "1").partition("?")
    assert js(viewer, old[0], old[2])[0] == 200
    kvs.put(signing.KEY_PREFIX + "2", "new")  # rotation, step 1: the new key joins the store
    new = signing.sign("/x.jpg?w=100", "new", "2").partition("?")
    assert js(viewer, old[0], old[2])[0] == 200 and js(viewer, new[0], new[2])[0] == 200
    kvs.delete(signing.KEY_PREFIX + "1")  # step 2 (next rotation): the oldest key leaves
    assert js(viewer, old[0], old[2]) == (403, "kid")
    assert js(viewer, new[0], new[2])[0] == 200
    viewer.close()


def test_key_value_store_limits_are_the_documented_ones() -> None:
    kvs = KeyValueStore("limits")
    kvs.put("k" * 512, "v" * 1024)
    with pytest.raises(KeyValueStoreError, match="ValidationException"):
        kvs.put("k" * 513, "v")
    with pytest.raises(KeyValueStoreError, match="ValidationException"):
        kvs.put("k", "v" * 1025)
    with pytest.raises(KeyValueStoreError, match="ValidationException"):
        kvs.put("", "v")
    with pytest.raises(KeyValueStoreError, match="ConflictException"):
        kvs.put("k", "v", if_match=kvs.version - 1)
    full = KeyValueStore("full")  # 5 MB in all: 3,413 pairs of 1,536 bytes fit, the next does not
    for i in range(3413):
        full.put(f"{i:0>512}", "v" * 1024)
    with pytest.raises(KeyValueStoreError, match="ServiceQuotaExceeded"):
        full.put("x" * 512, "v" * 1024)


# -- forgeries: 10,000 tampered URLs, none accepted -----------------------------------------

PARAMS = st.sampled_from(["w", "width", "h", "q", "fm", "fit", "crop", "dpr", "preset", "utm", "W", "Q"])
VALUES = st.sampled_from(["100", "160", "200", "800", "2", "webp", "jpeg", "cover", "contain", "entropy", "thumb", ""])
SEGMENT = st.text(alphabet="abcxyz019-_.é%", min_size=1, max_size=6).filter(lambda s: s not in (".", ".."))


@st.composite
def tampered(draw: st.DrawFn) -> tuple[str, str, str, str]:
    """(path, signed query, tampered path, tampered query)."""
    segments = draw(st.lists(SEGMENT, min_size=1, max_size=3))
    path = "/" + "/".join(s.replace("%", "%25") for s in segments) + ".jpg"
    pairs = [f"{n}={v}" for n, v in draw(st.lists(st.tuples(PARAMS, VALUES), max_size=4))]
    kid = draw(st.sampled_from(["1", "2"]))
    expires = draw(st.one_of(st.none(), st.integers(int(NOW) + 1, int(NOW) + 10**6)))
    signed = signing.sign(path + ("?" + "&".join(pairs) if pairs else ""), KEYS[kid], kid, expires=expires)
    path, _, query = signed.partition("?")
    items = query.split("&")
    how = draw(st.sampled_from(["path", "add", "drop", "change", "sig", "kid", "expires", "swap-key"]))
    if how == "path":
        at = draw(st.integers(1, len(path) - 1))
        path = path[:at] + draw(st.sampled_from(["a", "x", "/b", "%41", "9"])) + path[at + 1 :]
    elif how == "add":
        items.insert(draw(st.integers(0, len(items))), f"{draw(PARAMS)}={draw(VALUES)}")
    elif how == "drop":
        items.pop(draw(st.integers(0, len(items) - 2)))
    elif how == "change":
        at = draw(st.integers(0, len(items) - 2))
        name = items[at].partition("=")[0]
        items[at] = f"{name}={draw(VALUES)}"
    elif how == "sig":
        at = draw(st.integers(4, len(items[-1]) - 1))
        items[-1] = items[-1][:at] + draw(st.sampled_from("0123456789abcdef")) + items[-1][at + 1 :]
    elif how == "kid":
        items = [f"kid={'2' if kid == '1' else '1'}" if i.startswith("kid=") else i for i in items]
    elif how == "expires":
        later = (expires or int(NOW)) + draw(st.integers(1, 10**6))
        items = [i for i in items if not i.startswith("expires=")]
        items.insert(-1, f"expires={later}")
    else:  # signed with a key the stack does not hold
        _, _, foreign = signing.sign(path + "?" + "&".join(items[:-1]), "not-a-stack-key", kid).partition("?")
        items = foreign.split("&")
    return signed.partition("?")[0], query, path, "&".join(items)


def _meaning(path: str, query: str) -> tuple[str, str] | None:
    try:
        return signing.message(path, query), dict(p.partition("=")[::2] for p in query.split("&")).get("sig", "")
    except variants.VariantError:
        return None


@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(case=tampered())
def test_no_tampered_url_is_accepted(viewers: dict[str, ViewerFunction], case: tuple[str, str, str, str]) -> None:
    """A changed URL passes only if it means exactly what was signed (same message, same signature)."""
    path, query, bad_path, bad_query = case
    same = _meaning(bad_path, bad_query) == _meaning(path, query)
    js_status, js_uri = js(viewers["required"], bad_path, bad_query)
    py_status, py_uri = py("required", bad_path, bad_query)
    assert (js_status, js_uri) == (py_status, py_uri)
    if js_status == 200:
        assert same, f"forgery accepted: {bad_path}?{bad_query} (signed {path}?{query})"
        assert (js_status, js_uri) == js(viewers["required"], path, query)
