"""Abuse, round 2: a refusal is paid for once, one table of limits, and only images leave the image path.

Each attack as a stranger sends it. Work is counted, never timed: decodes (imaging's entry points
wrapped), Pillow's readers reached, reads of an original's body, sub-blocks walked.

CloudFront's behaviour here comes from its documents, as the emulator models it:
"How CloudFront processes and caches HTTP 4xx and 5xx status codes from your origin" (which 4xx
it caches at all, and which only with max-age or s-maxage), "Control how long CloudFront caches
errors", "Updating HTTP responses in origin-response triggers" (a function that sets no body
passes the origin's on), and S3's "Working with object metadata" (user metadata comes back as
x-amz-meta-* headers).
"""

from __future__ import annotations

import base64
import io
import json
import random
import struct
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import CatalogEnv, FakeS3
from moto import mock_aws
from PIL import GifImagePlugin, Image, ImageFile

from edge import imaging, limits, resize
from edge.settings import Settings
from localcdn import events, samples
from localcdn.distribution import Distribution, Response, cache_seconds
from localcdn.storage import LocalS3
from sync.job import Original, Sync
from tests import hostile

PRIMARY = "test-origin.s3.eu-west-1.amazonaws.com"
FALLBACK = "test-fallback.s3.eu-central-1.amazonaws.com"


# -- originals an attacker uploads -----------------------------------------------------------------


def gif_of(frames: list[tuple[int, int]], screen: tuple[int, int] = (1, 1)) -> bytes:
    """A GIF of 1x1-pixel image data per frame, each frame declaring the extent given (a 2-colour
    palette, a graphic control extension per frame, looping)."""
    head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    loop = b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    body = b"".join(
        b"\x21\xf9\x04\x04\x01\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x02\x02\x44\x01\x00"
        for w, h in frames
    )
    return head + loop + body + b"\x3b"


def million_frame_gif() -> bytes:
    """23 MB: a million 1x1 frames (the issue's example; Pillow's n_frames walks all of them)."""
    frame = b"\x21\xf9\x04\x04\x01\x00\x00\x00\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return gif_of([])[:-1] + frame * 1_000_000 + b"\x3b"


def gif_extent_bomb() -> bytes:
    """85 bytes: a 1x1 screen whose second frame declares 30000x30000 (Pillow grows the image to it)."""
    return gif_of([(1, 1), (30_000, 30_000)])


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) & 1 else b"")


def webp_frames(count: int) -> bytes:
    """An animated WebP of `count` 1x1 lossless frames, written chunk by chunk (about 50 bytes a frame)."""
    one = io.BytesIO()
    Image.new("RGB", (1, 1), (9, 9, 9)).save(one, "WEBP", lossless=True)
    vp8l = one.getvalue()[20 : 20 + struct.unpack_from("<I", one.getvalue(), 16)[0]]
    frame = (0).to_bytes(6, "little") + (0).to_bytes(6, "little") + (100).to_bytes(3, "little") + b"\0"
    anmf = _chunk(b"ANMF", frame + _chunk(b"VP8L", vp8l))
    vp8x = bytes([0x02, 0, 0, 0]) + (0).to_bytes(3, "little") + (0).to_bytes(3, "little")
    body = b"WEBP" + _chunk(b"VP8X", vp8x) + _chunk(b"ANIM", struct.pack("<IH", 0, 0)) + anmf * count
    return b"RIFF" + struct.pack("<I", len(body)) + body


def avif_declaring(samples_count: int) -> bytes:
    """A 3-frame AVIF sequence whose sample table says `samples_count` one-byte samples, with the
    bytes to back them (libavif allocates a table entry per declared sample when it opens it)."""
    frames = [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(3)]
    out = io.BytesIO()
    frames[0].save(out, "AVIF", save_all=True, append_images=frames[1:], duration=100, speed=10)
    data = bytearray(out.getvalue())

    def box(kind: bytes) -> int:
        return data.index(kind) - 4

    struct.pack_into(">I", data, box(b"stts") + 16, samples_count)  # one entry: count, delta
    struct.pack_into(">II", data, box(b"stsz") + 12, 1, samples_count)  # uniform size 1, count
    struct.pack_into(">I", data, box(b"stsc") + 20, samples_count)  # every sample in one chunk
    struct.pack_into(">I", data, box(b"stco") + 16, len(data) + 8)  # which starts in the mdat below
    return bytes(data) + struct.pack(">I4s", 8 + samples_count, b"mdat") + b"\x12" * samples_count


def apng_declaring(frames: int) -> bytes:
    """A PNG whose acTL chunk declares `frames` frames (read by Pillow before the first IDAT)."""
    image = hostile.png_bomb(4, 4)
    actl = struct.pack(">II", frames, 0)
    chunk = struct.pack(">I", 8) + b"acTL" + actl + struct.pack(">I", zlib.crc32(b"acTL" + actl))
    return image[:33] + chunk + image[33:]


def truncated_animation() -> bytes:
    """An animated GIF cut in its last frame: the first frames decode, the last does not."""
    whole = samples.animation(160, 120, frames=4)
    return whole[: len(whole) - 40]


ATTACKS = [
    ("gif-1000000-frames", million_frame_gif()),
    ("gif-frame-extent-30000x30000", gif_extent_bomb()),
    ("png-header-8000x8000", hostile.png_bomb(8000, 8000)),
    ("webp-5000-frames", webp_frames(5000)),
    ("avif-declaring-2000000-samples", avif_declaring(2_000_000)),
    ("apng-declaring-1000-frames", apng_declaring(1000)),
    ("gif-300-frames", hostile._animated("GIF", 300)),
    ("gif-truncated-in-its-last-frame", truncated_animation()),
]
CORPUS = [*hostile.cases(), *ATTACKS]
SMALL = Settings(
    widths=(160, 320),
    primary_bucket="test-origin",
    primary_region="eu-west-1",
    fallback_bucket="test-fallback",
    fallback_region="eu-central-1",
)


# -- one table of limits: the same verdict from resize, the sync job and the catalogue ------------


def test_the_catalogue_refused_an_animation_that_the_edge_rendered_as_jpeg() -> None:
    """The issue's case: the catalogue counted frames for every original (`probe`), resize only for an
    animated output, so a 300-frame GIF was `rejected` in the catalogue and rendered for `fm=jpeg`.
    Frames are now a limit on the original: every output and every service refuses it alike."""
    data = hostile._animated("GIF", 300)
    as_jpeg = verdict_of(lambda: imaging.transform(data, width=160, height=None, fit="cover", quality=60, fmt="jpeg"))
    catalogue = verdict_of(lambda: imaging.probe(data))
    refused = (413, "TooManyFrames", 'Expected at most 200 frames for image but received "more than 200"')
    assert as_jpeg == catalogue == refused


def verdict_of(work: Callable[[], object]) -> tuple[int, str, str] | str:
    try:
        work()
    except imaging.ImageError as problem:
        return problem.status, problem.error, problem.message
    return "accepted"


class World:
    """One moto for the corpus: the stack's two buckets (resize, the sync job) and the catalogue's own
    bucket and table. Each original is put under its own keys, so no refusal kept for one run is
    read by another."""

    def __init__(self) -> None:
        self.s3 = FakeS3(SMALL)
        self.catalog = CatalogEnv(Settings(**(SMALL.as_dict() | {"primary_bucket": "corpus-catalog"})))

    def resize(self, key: str, data: bytes, fmt: str) -> tuple[int, str] | str:
        """A stranger's first request for a variant of the original (no refusal kept for it yet)."""
        self.s3.put_original(key, data)
        request = events.origin_request(f"/{key}/w_160_q_60.{fmt}", PRIMARY, "eu-west-1")["Records"][0]["cf"]
        answer = resize.handle(events.origin_response(request["request"], 404), SMALL, self.s3.factory)
        if answer["status"] in ("200", "302"):
            return "accepted"
        body = json.loads(answer["body"])
        if body.get("error") == "UnencodableImage":  # this variant only (its side over the format's limit)
            return "accepted"
        return int(answer["status"]), body["message"]

    def sync(self, key: str, data: bytes) -> tuple[int, str] | str:
        """The sync job's build of the original's standard set (what an upload's event runs)."""
        self.s3.put_original(key, data)
        etag = self.s3.get(SMALL.primary_bucket, f"originals/{key}")["ETag"].strip('"')
        summary = Sync(SMALL, self.s3.factory).build(Original(key, etag, len(data)))
        if not summary.failures:
            return "accepted"
        status, message = summary.failures[0]["reason"].split(" ", 1)
        if message.startswith("Expected a result of at most"):
            # UnencodableImage: a standard variant the format cannot hold (a 1x100000 strip as WebP); the
            # sync job reports the set failed (sync/job.py), the original itself is not refused.
            return "accepted"
        return int(status), message

    def catalogue(self, key: str, data: bytes) -> tuple[int, str] | str:
        """The metadata function on the upload's Object Created event."""
        self.catalog.put(f"originals/{key}", data)
        answer = self.catalog.event("Object Created", f"originals/{key}")
        item = self.catalog.catalogue.get(answer["id"]) or {}
        if item.get("status") == "ready":
            return "accepted"
        status = {cls.error: cls.status for cls in _refusals()}[item["error"]]
        return status, item["reason"]


def verdicts(originals: list[tuple[str, bytes]]) -> dict[str, dict[str, tuple[int, str] | str]]:
    """Each original's verdicts, by who gave them, in one moto (each under its own keys)."""
    found = {}
    with mock_aws():
        world = World()
        for name, data in originals:
            key = f"corpus/{zlib.crc32(name.encode()):08x}"
            found[name] = {
                "resize, fm=jpeg": world.resize(f"{key}/jpeg.img", data, "jpeg"),
                "resize, fm=webp": world.resize(f"{key}/webp.img", data, "webp"),
                "sync job": world.sync(f"{key}/set.img", data),
                "catalogue": world.catalogue(f"{key}/item.img", data),
            }
    return found


def _refusals() -> list[type[limits.ImageError]]:
    found: list[type[limits.ImageError]] = []
    pending = [limits.ImageError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def camera_jpeg_cut_short() -> bytes:
    """A phone's JPEG (EXIF thumbnail in its first 256 KB) whose upload stopped at 90%."""
    whole = samples.camera_jpeg(samples.photo(3000, 2000, seed=3))
    return whole[: len(whole) * 9 // 10]


# Where the three still differ, each held here until it is closed (strict: a fix makes it fail).
KNOWN_GAPS = [
    pytest.param(
        "camera-jpeg-cut-at-90%",
        camera_jpeg_cut_short(),
        marks=pytest.mark.xfail(
            strict=True,
            reason="the catalogue reads a JPEG's first 256 KB and its EXIF thumbnail only, so it never sees "
            "a truncated body that resize and the sync job refuse (422)",
        ),
        id="camera-jpeg-cut-at-90%",
    )
]


SLICES = 6


@pytest.mark.parametrize("part", range(SLICES), ids=[f"corpus-part-{part + 1}-of-{SLICES}" for part in range(SLICES)])
def test_one_verdict_per_original_from_resize_the_sync_job_and_the_catalogue(part: int) -> None:
    """The whole corpus (the hostile one and this issue's attacks), in slices that run side by side:
    every original is accepted by all four, or refused by all four with one status and reason."""
    found = verdicts(CORPUS[part::SLICES])
    disagreeing = {name: given for name, given in found.items() if len(set(given.values())) != 1}
    assert disagreeing == {}
    assert {name for name, given in found.items() if "accepted" not in given.values()}  # not vacuous


@pytest.mark.parametrize(("name", "data"), KNOWN_GAPS)
def test_where_the_three_still_disagree(name: str, data: bytes) -> None:
    found = verdicts([(name, data)])[name]
    assert len(set(found.values())) == 1, found


def probed(data: bytes) -> tuple[int, str, str] | str:
    return verdict_of(lambda: imaging.probe(data))


def test_the_new_attacks_are_refused_for_the_right_reason() -> None:
    reasons = {name: probed(data) for name, data in ATTACKS}
    assert reasons == {
        "gif-1000000-frames": (
            413,
            "TooManyFrames",
            'Expected at most 200 frames for image but received "more than 200"',
        ),
        "gif-frame-extent-30000x30000": (
            413,
            "TooManyPixels",
            'Expected at most 50000000 pixels for image but received "30000x30000"',
        ),
        "png-header-8000x8000": (
            413,
            "TooManyPixels",
            'Expected at most 50000000 pixels for image but received "8000x8000"',
        ),
        "webp-5000-frames": (
            413,
            "TooManyFrames",
            'Expected at most 200 frames for image but received "more than 200"',
        ),
        "avif-declaring-2000000-samples": (
            413,
            "TooManyFrames",
            "Expected at most 200 frames for image but received 2000000",
        ),
        # Pillow counts the acTL's frames and the default image, which no fcTL makes one of them
        "apng-declaring-1000-frames": (413, "TooManyFrames", "Expected at most 200 frames for image but received 1001"),
        # counted to 201 only
        "gif-300-frames": (413, "TooManyFrames", 'Expected at most 200 frames for image but received "more than 200"'),
        "gif-truncated-in-its-last-frame": "accepted",
    }


def test_over_the_byte_limit_resize_and_the_catalogue_give_the_same_reason() -> None:
    tight = Settings(**(SMALL.as_dict() | {"max_input_bytes": 4096}))
    data = samples.jpeg(samples.photo(320, 240))
    assert len(data) > 4096
    with mock_aws():
        s3 = FakeS3(tight)
        s3.put_original("big.jpg", data)
        request = events.origin_request("/big.jpg/w_160_q_60.jpeg", PRIMARY, "eu-west-1")["Records"][0]["cf"]["request"]
        answer = resize.handle(events.origin_response(request, 404), tight, s3.factory)
    with mock_aws():
        env = CatalogEnv(tight)
        env.put("originals/big.jpg", data)
        item = env.catalogue.get(env.event("Object Created", "originals/big.jpg")["id"]) or {}
    expected = f'Expected at most 4096 bytes for image but received "{len(data)} bytes"'
    assert (answer["status"], json.loads(answer["body"])["message"]) == ("413", expected)
    assert (item["status"], item["error"], item["reason"]) == ("rejected", "InputTooLarge", expected)


def test_over_the_byte_limit_the_sync_job_gives_the_same_reason() -> None:
    tight = Settings(**(SMALL.as_dict() | {"max_input_bytes": 4096}))
    data = samples.jpeg(samples.photo(320, 240))
    with mock_aws():
        s3 = FakeS3(tight)
        s3.put_original("big.jpg", data)
        summary = Sync(tight, s3.factory).build(Original("big.jpg", "e", len(data)))
    expected = f'Expected at most 4096 bytes for image but received "{len(data)} bytes"'
    assert summary.failures[0]["reason"] == f"413 {expected}"


# -- what a header shows is refused before anything reads the rest ----------------------------------


class Reached:
    """Counts what Pillow is asked to do: opens, GIF frame seeks, pixel loads."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.opens = self.seeks = self.loads = 0
        open_, seek, load = Image.open, GifImagePlugin.GifImageFile._seek, ImageFile.ImageFile.load

        def counted_open(*args: Any, **kwargs: Any) -> Any:
            self.opens += 1
            return open_(*args, **kwargs)

        def counted_seek(image: Any, *args: Any, **kwargs: Any) -> Any:
            self.seeks += 1
            return seek(image, *args, **kwargs)

        def counted_load(image: Any) -> Any:
            self.loads += 1
            return load(image)

        monkeypatch.setattr(Image, "open", counted_open)
        monkeypatch.setattr(GifImagePlugin.GifImageFile, "_seek", counted_seek)
        monkeypatch.setattr(ImageFile.ImageFile, "load", counted_load)


@pytest.mark.parametrize(
    "name", ["gif-1000000-frames", "gif-frame-extent-30000x30000", "webp-5000-frames", "avif-declaring-2000000-samples"]
)
def test_a_container_that_declares_too_much_never_reaches_pillow(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    data = dict(ATTACKS)[name]
    reached = Reached(monkeypatch)
    with pytest.raises(imaging.ImageError) as refused:
        imaging.transform(data, width=160, height=None, fit="cover", quality=60, fmt="webp")
    assert refused.value.status == 413
    assert (reached.opens, reached.seeks, reached.loads) == (0, 0, 0)


def test_a_png_bomb_is_refused_from_its_header_without_a_pixel_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    reached = Reached(monkeypatch)
    with pytest.raises(imaging.TooManyPixels):
        imaging.transform(hostile.png_bomb(8000, 8000), width=160, height=None, fit="cover", quality=60, fmt="jpeg")
    assert reached.opens == 1 and reached.loads == 0


def test_a_gifs_frames_are_counted_to_the_limit_and_no_further(monkeypatch: pytest.MonkeyPatch) -> None:
    walked = [0]
    skip = limits._skip_sub_blocks

    def counted(data: bytes, at: int) -> int:
        walked[0] += 1
        return skip(data, at)

    monkeypatch.setattr(limits, "_skip_sub_blocks", counted)
    declared = limits.inspect(million_frame_gif(), limits.Limits())
    assert declared == limits.Header(1, 1, 201, exact=False)
    # the looping extension, then a graphic control extension and the image data of each frame counted
    assert walked[0] == 1 + 2 * 201


def _random_gif(rng: random.Random) -> bytes:
    """A GIF of random blocks: frames of random extents, graphic control, comment, application and
    empty extensions, stray bytes; sometimes cut short. What a fuzzer would send."""
    head = b"GIF89a" + struct.pack("<HHBBB", rng.randint(1, 40), rng.randint(1, 40), 0x80, 0, 0) + b"\0" * 6
    blocks = []
    for _ in range(rng.randint(0, 12)):
        kind = rng.choice(["frame", "frame", "gce", "comment", "netscape", "app", "empty", "stray"])
        if kind == "frame":
            w, h, x, y = rng.randint(1, 60), rng.randint(1, 60), rng.randint(0, 30), rng.randint(0, 30)
            blocks.append(b"\x2c" + struct.pack("<HHHHB", x, y, w, h, 0) + b"\x02\x02\x44\x01\x00")
        elif kind == "gce":
            blocks.append(b"\x21\xf9\x04\x04\x01\x00\x00\x00")
        elif kind == "comment":
            blocks.append(b"\x21\xfe" + b"".join(bytes([n]) + b"c" * n for n in rng.sample(range(1, 9), 2)) + b"\0")
        elif kind == "netscape":
            blocks.append(b"\x21\xff\x0bNETSCAPE2.0" + rng.choice([b"\x03\x01\x00\x00\x00", b"\x00", b"\x00\x00"]))
        elif kind == "app":
            blocks.append(b"\x21\xff\x03abc\x02xy\x00")
        elif kind == "empty":  # an extension whose first sub-block is its terminator
            blocks.append(bytes([0x21, rng.choice([0x01, 0xF9, 0xFF])]) + b"\x00")
        else:
            blocks.append(bytes([rng.randrange(256)]))
    data = head + b"".join(blocks) + b"\x3b"
    return data[: rng.randint(13, len(data))] if rng.random() < 0.2 else data


def test_a_gifs_declared_frames_and_canvas_are_what_pillow_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Differential: on a thousand fuzzed GIFs, the header walk counts what Pillow counts, and its
    canvas is never smaller than any frame Pillow grows the image to (or a render could allocate
    what the check never saw)."""
    rng = random.Random(20251202)
    compared = 0
    for _ in range(1000):
        data = _random_gif(rng)
        declared = limits.inspect(data, limits.Limits(max_frames=8))
        try:
            image = Image.open(io.BytesIO(data), formats=("GIF",))
            counted = image.n_frames
        except Exception:
            continue  # Pillow cannot read it at all: refused (422) whatever the walk says
        compared += 1
        assert (declared.frames, declared.exact) == (min(counted, 9), counted < 9), data
        grown = image.size
        for index in range(min(counted, 9)):
            try:
                image.seek(index)
            except Exception:
                break  # a frame that does not decode ends the animation (imaging._each_frame)
            grown = (max(grown[0], image.size[0]), max(grown[1], image.size[1]))
        assert declared.width is not None and declared.height is not None
        assert declared.width >= grown[0] and declared.height >= grown[1], data
    assert compared > 300


def test_the_limit_is_exact_at_max_frames() -> None:
    at_limit, over = gif_of([(1, 1)] * 200), gif_of([(1, 1)] * 201)
    assert imaging.probe(at_limit).animated
    with pytest.raises(imaging.TooManyFrames) as refused:
        imaging.probe(over)
    assert refused.value.received == '"more than 200"'


def test_a_truncated_animation_plays_its_whole_frames_for_every_output() -> None:
    data = truncated_animation()
    moving, _ = imaging.transform(data, width=160, height=None, fit="cover", quality=60, fmt="webp")
    still, _ = imaging.transform(data, width=160, height=None, fit="cover", quality=60, fmt="jpeg")
    assert Image.open(io.BytesIO(still)).format == "JPEG"
    assert 1 < getattr(Image.open(io.BytesIO(moving)), "n_frames", 1) < 4  # the broken last frame left out
    set_ = list(imaging.render_set(data, widths=(160,), formats=("webp", "jpeg"), quality=60))
    assert [rendition.fmt for rendition in set_] == ["webp", "jpeg"]


# -- a refusal is paid for once ----------------------------------------------------------------------


class Work:
    """Counts decodes (imaging's entry points) and reads of an original's body through resize's S3 client."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, storage: LocalS3):
        self.transforms = self.opens = self.original_bodies = 0
        transform, open_ = imaging.transform, imaging._open

        def counted_transform(*args: Any, **kwargs: Any) -> Any:
            self.transforms += 1
            return transform(*args, **kwargs)

        def counted_open(*args: Any, **kwargs: Any) -> Any:
            self.opens += 1
            return open_(*args, **kwargs)

        monkeypatch.setattr(imaging, "transform", counted_transform)
        monkeypatch.setattr(imaging, "_open", counted_open)
        edge_client = storage.edge_client
        work = self

        class Counting:
            def __init__(self, client: Any):
                self.client = client

            def get_object(self, **kwargs: Any) -> Any:
                answer = self.client.get_object(**kwargs)
                if str(kwargs["Key"]).startswith("originals/"):
                    body = answer["Body"]

                    class Body:
                        def read(self) -> bytes:
                            work.original_bodies += 1
                            return bytes(body.read())

                        def close(self) -> None:
                            body.close()

                    answer["Body"] = Body()
                return answer

            def __getattr__(self, name: str) -> Any:
                return getattr(self.client, name)

        monkeypatch.setattr(storage, "edge_client", lambda region: Counting(edge_client(region)))


@pytest.fixture
def cdn_of() -> Iterator[Callable[[Settings], tuple[Distribution, LocalS3]]]:
    """The emulated distribution in this process (its S3 a moto server on loopback)."""
    made: list[LocalS3] = []

    def make(settings: Settings) -> tuple[Distribution, LocalS3]:
        storage = LocalS3(settings)
        made.append(storage)
        return Distribution(settings, storage, error_caching_seconds=settings.error_cache_seconds), storage

    yield make
    for storage in made:
        storage.stop()


def bucket_keys(storage: LocalS3, prefix: str) -> list[str]:
    return sorted(str(item["Key"]) for item in storage.objects(storage.settings.primary_bucket, prefix))


def test_a_refused_original_is_decoded_once_whatever_is_asked_after(
    monkeypatch: pytest.MonkeyPatch, cdn_of: Callable[[Settings], tuple[Distribution, LocalS3]]
) -> None:
    settings = Settings(primary_bucket="refusal-origin", fallback_bucket="refusal-fallback")
    distribution, storage = cdn_of(settings)
    storage.put_original("uploads/million.gif", million_frame_gif())
    work = Work(monkeypatch, storage)
    avif = {"Accept": "image/avif,image/webp,*/*"}
    first = distribution.request("GET", "/uploads/million.gif", "w=800", avif)
    assert first.status == 413 and (work.transforms, work.opens, work.original_bodies) == (1, 1, 1)
    refusal = json.loads(first.body)
    assert refusal["error"] == "TooManyFrames"
    expected_cache = f"public, max-age={settings.error_cache_seconds}, s-maxage={settings.variant_cdn_seconds}"
    assert first.headers["Cache-Control"] == expected_cache
    # Again and again, on the same URL and on others: nothing decoded, the original's body never read again.
    again = [("w=800", avif)] * 3 + [
        ("w=320", avif),
        ("w=320&fm=jpeg", {}),
        ("w=640&h=640&fit=contain&fm=webp", {}),
        ("q=90", {"Accept": "*/*"}),
        ("w=320", avif),
        ("w=320&fm=jpeg", {}),
    ]
    for query, headers in again:
        answer = distribution.request("GET", "/uploads/million.gif", query, headers)
        assert (answer.status, json.loads(answer.body)) == (413, refusal), query
        assert answer.headers["Cache-Control"] == expected_cache
        assert answer.headers["Content-Type"] == "application/json"
        # 413 is not among the 4xx codes CloudFront caches: every request reaches the origin, and S3's
        # tombstone (or the marker) answers it
        assert answer.headers["X-Cache"] == "Miss"
    assert (work.transforms, work.opens, work.original_bodies) == (1, 1, 1)
    etag = (
        storage.client(settings.primary_region)
        .head_object(Bucket=settings.primary_bucket, Key="originals/uploads/million.gif")["ETag"]
        .strip('"')
    )
    # Every long-cached answer for this original is an object under variants/<key>/, for the sync job
    # to invalidate and delete when the original is replaced: the marker and one tombstone per path.
    assert bucket_keys(storage, "variants/uploads/million.gif/") == [
        f"variants/uploads/million.gif/{name}"
        for name in sorted(
            [
                f"_refused.{etag}",
                "w_1024_q_60.avif",
                "w_320_q_60.avif",
                "w_320_q_60.jpeg",
                "w_2560_q_90.jpeg",
                "w_640_h_640_q_60_fit_contain.webp",
            ]
        )
    ]


def test_a_replaced_original_is_judged_again(settings: Settings, s3: FakeS3) -> None:
    s3.put_original("swap.gif", million_frame_gif())
    assert respond(settings, s3, "/swap.gif/w_320_q_60.webp", 404)["status"] == "413"
    s3.put_original("swap.gif", samples.jpeg(samples.photo(640, 480)))  # a new version: a new ETag
    answer = respond(settings, s3, "/swap.gif/w_160_q_60.webp", 404)
    assert answer["status"] == "200"
    assert Image.open(io.BytesIO(base64.b64decode(answer["body"]))).size == (160, 120)


def test_a_refusal_about_one_variant_keeps_no_marker(settings: Settings, s3: FakeS3) -> None:
    s3.put_original("strip.png", samples.png(Image.new("RGB", (1, 100_000), (10, 200, 30))))
    assert respond(settings, s3, "/strip.png/w_320_q_60.webp", 404)["status"] == "422"  # WebP's side limit
    assert s3.keys(settings.primary_bucket) == ["originals/strip.png", "variants/strip.png/w_320_q_60.webp"]
    assert respond(settings, s3, "/strip.png/w_320_q_60.png", 404)["status"] == "200"  # PNG holds it


def test_an_unreadable_marker_means_no_marker(settings: Settings, s3: FakeS3) -> None:
    s3.put_original("odd.jpg", samples.jpeg(samples.photo(320, 240)))
    etag = s3.get(settings.primary_bucket, "originals/odd.jpg")["ETag"].strip('"')
    for forged in (b"not json", json.dumps({"status": 200, "body": {}}).encode()):
        s3.factory(settings.primary_region).put_object(
            Bucket=settings.primary_bucket, Key=f"variants/odd.jpg/_refused.{etag}", Body=forged
        )
        assert respond(settings, s3, "/odd.jpg/w_160_q_60.webp", 404)["status"] == "200"


# -- what S3 answers for a refused variant's path ------------------------------------------------------


def respond(
    settings: Settings,
    s3: FakeS3 | None,
    uri: str,
    status: int,
    headers: dict[str, str] | None = None,
    domain: str = PRIMARY,
) -> dict[str, Any]:
    from edge import rewrite

    forwarded = rewrite.handle(events.origin_request(uri, domain, "eu-west-1"), settings)
    assert "status" not in forwarded, forwarded
    event = events.origin_response(forwarded, status, headers)
    return resize.handle(event, settings, s3.factory if s3 is not None else _no_s3)


def _no_s3(region: str) -> Any:
    raise AssertionError("S3 must not be touched here")


def headers_of(response: dict[str, Any]) -> dict[str, str]:
    return {name: values[0]["value"] for name, values in response["headers"].items()}


TOMBSTONE = {"Content-Type": "application/json", "x-amz-meta-refused": "413", "x-amz-meta-source-etag": "abc"}


def test_a_tombstone_from_s3_becomes_the_refusal_with_its_stored_body(settings: Settings) -> None:
    answer = respond(settings, None, "/a.gif/w_320_q_60.webp", 200, TOMBSTONE)
    assert answer["status"] == "413" and answer["statusDescription"] == "Payload Too Large"
    assert "body" not in answer  # the stored JSON passes on: only the status and headers change
    headers = headers_of(answer)
    assert headers["content-type"] == "application/json" and headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == (
        f"public, max-age={settings.error_cache_seconds}, s-maxage={settings.variant_cdn_seconds}"
    )


def test_a_range_of_a_tombstone_is_the_whole_refusal_from_the_versions_marker(settings: Settings, s3: FakeS3) -> None:
    refusal = {"error": "TooManyFrames", "message": "Expected at most 200 frames for image but received 300"}
    s3.factory(settings.primary_region).put_object(
        Bucket=settings.primary_bucket,
        Key="variants/a.gif/_refused.abc",
        Body=json.dumps({"status": 413, "body": refusal}).encode(),
    )
    answer = respond(settings, s3, "/a.gif/w_320_q_60.webp", 206, TOMBSTONE | {"Content-Range": "bytes 0-9/120"})
    assert (answer["status"], json.loads(answer["body"])) == ("413", refusal)
    assert "content-range" not in answer["headers"]


def test_a_304_for_a_tombstone_keeps_the_refusals_lifetime(settings: Settings) -> None:
    answer = respond(settings, None, "/a.gif/w_320_q_60.webp", 304, TOMBSTONE)
    assert answer["status"] == "304"
    assert headers_of(answer)["cache-control"].endswith(f"s-maxage={settings.variant_cdn_seconds}")


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/html", "x-amz-meta-refused": "413"},  # a tombstone is our JSON, nothing else
        {"Content-Type": "application/json", "x-amz-meta-refused": "200"},
        {"Content-Type": "application/json", "x-amz-meta-refused": "<script>"},
    ],
)
def test_a_forged_tombstone_is_not_served(settings: Settings, headers: dict[str, str]) -> None:
    answer = respond(settings, None, "/a.gif/w_320_q_60.webp", 200, headers)
    assert answer["status"] == "502" and headers_of(answer)["cache-control"] == "no-store"


def test_a_default_image_slot_holding_a_tombstone_is_not_served_as_the_image(settings: Settings, s3: FakeS3) -> None:
    stack = Settings(**(settings.as_dict() | {"default_image": "site/missing.png"}))
    s3.put_original("site/missing.png", gif_of([(1, 1)] * 201))  # a default that is itself refused
    answer = respond(stack, s3, "/nope.jpg/w_320_q_60.webp", 404)
    assert answer["status"] == "404" and json.loads(answer["body"])["error"] == "NotFound"
    again = respond(stack, s3, "/nope.jpg/w_320_q_60.webp", 404)  # its tombstone is there now
    assert again["status"] == "404" and headers_of(again)["content-type"] == "application/json"


# -- CloudFront's caching of refusals, as its document says (the emulator's model) ---------------------


@pytest.mark.parametrize(
    ("status", "cache_control", "seconds"),
    [
        # "How CloudFront processes and caches HTTP 4xx and 5xx status codes from your origin": 413 and
        # 422 are in neither of its lists, so CloudFront does not cache them, whatever the header says
        (413, "public, max-age=5, s-maxage=31536000", 0),
        (422, "public, max-age=5, s-maxage=31536000", 0),
        # 412 and 415 only with max-age or s-maxage: then for that long (within the maximum TTL)
        (415, "public, max-age=5, s-maxage=31536000", 31_536_000),
        (415, "public", 0),
        (412, "max-age=60", 60),
        # a 502 is always cached, for the error caching minimum TTL: no-store is ignored
        (502, "no-store", 5),
    ],
)
def test_the_emulator_caches_refusals_as_cloudfronts_document_says(
    status: int, cache_control: str, seconds: int
) -> None:
    assert cache_seconds(Response(status, {"Cache-Control": cache_control}), 5) == seconds


# -- only images leave the image path --------------------------------------------------------------


def service_settings() -> Settings:
    return Settings(
        primary_kind="http",
        primary_domain="thumbor.example.com",
        primary_template="thumbor",
        primary_bucket="test-origin",
        primary_region="eu-west-1",
        fallback_bucket="test-fallback",
        fallback_region="eu-central-1",
    )


def service_response(status: int, headers: dict[str, str]) -> dict[str, Any]:
    settings = service_settings()
    request = events.origin_request("/a.jpg/w_320_q_60.webp", settings.primary_domain, "", custom=True)
    event = events.origin_response(request["Records"][0]["cf"]["request"], status, headers)
    return resize.handle(event, settings, _no_s3)


@pytest.mark.parametrize(
    ("origin", "status", "content_type"),
    [
        ("fallback", 200, "text/html"),
        ("primary", 200, "image/svg+xml"),
        ("primary", 200, "application/json"),  # our JSON, but not a tombstone
        ("primary", 200, ""),
        ("fallback", 206, "multipart/byteranges; boundary=x"),  # a range's parts hide their own types
        ("service", 200, "application/octet-stream"),
        ("service", 200, "text/html; charset=utf-8"),
    ],
)
def test_anything_but_an_image_is_a_502_never_passed_on(
    settings: Settings, capsys: pytest.CaptureFixture[str], origin: str, status: int, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    if origin == "service":
        answer = service_response(status, headers)
    else:
        answer = respond(
            settings, None, "/a.jpg/w_320_q_60.webp", status, headers, FALLBACK if origin == "fallback" else PRIMARY
        )
    assert answer["status"] == "502"
    body = json.loads(answer["body"])
    assert body["error"] == "NotAnImage" and json.dumps(content_type or "no Content-Type") in body["message"]
    assert headers_of(answer)["cache-control"] == "no-store"
    assert headers_of(answer)["content-type"] == "application/json"
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"not-an-image"' in line]
    assert logged == [
        {
            "event": "not-an-image",
            "uri": "/a.jpg/w_320_q_60.webp",
            "origin": "primary" if origin == "service" else origin,
            "content_type": content_type,
        }
    ]


@pytest.mark.parametrize("status", [400, 403, 404, 410, 429])
def test_a_services_error_page_reaches_a_viewer_as_its_status_and_our_json(status: int) -> None:
    answer = service_response(status, {"Content-Type": "text/html", "Server": "thumbor"})
    assert answer["status"] == str(status)
    assert headers_of(answer)["content-type"] == "application/json"
    assert json.loads(answer["body"]) == {
        "error": "ServiceRefused",
        "message": f"The image service answered {status}",
    }


@pytest.mark.parametrize("status", [201, 203, 204, 301, 302, 307, 308])
def test_a_services_redirect_or_odd_success_is_a_502_never_passed_on(status: int) -> None:
    answer = service_response(status, {"Content-Type": "text/html", "Location": "https://evil.example/"})
    assert answer["status"] == "502" and "location" not in headers_of(answer)
    assert json.loads(answer["body"])["error"] == "NotAnImage"


@pytest.mark.parametrize(
    ("origin", "status", "content_type"),
    [
        ("primary", 200, "image/avif"),
        ("fallback", 200, "image/webp"),
        ("primary", 206, "image/jpeg"),
        ("primary", 200, "image/PNG"),
        ("service", 200, "image/gif"),  # thumbor answers an animated original as it is
        ("primary", 304, "text/html"),  # a 304 has no body
    ],
)
def test_images_and_empty_answers_pass(settings: Settings, origin: str, status: int, content_type: str) -> None:
    headers = {"Content-Type": content_type}
    if origin == "service":
        answer = service_response(status, headers)
    else:
        answer = respond(
            settings, None, "/a.jpg/w_320_q_60.webp", status, headers, FALLBACK if origin == "fallback" else PRIMARY
        )
    assert answer["status"] == str(status) and "body" not in answer


def test_a_planted_page_under_variants_never_reaches_a_viewer(
    cdn_of: Callable[[Settings], tuple[Distribution, LocalS3]],
) -> None:
    settings = Settings(primary_bucket="planted-origin", fallback_bucket="planted-fallback")
    distribution, storage = cdn_of(settings)
    page = b"<!doctype html><script>alert(document.cookie)</script>"
    for bucket, key, kind in (
        (settings.primary_bucket, "variants/shop/shoe.jpg/w_320_q_60.webp", "text/html"),
        (settings.fallback_bucket, "shop/shoe.jpg/w_320_q_60.webp", "image/svg+xml"),
    ):
        storage.client(storage.region_of(bucket)).put_object(Bucket=bucket, Key=key, Body=page, ContentType=kind)
    answer = distribution.request("GET", "/shop/shoe.jpg", "w=320&fm=webp", {})
    # The primary's page is a 502 (which fails over); the fallback's SVG is a 502 too
    assert answer.status == 502 and answer.headers["Content-Type"] == "application/json"
    assert b"<script>" not in answer.body and answer.headers["X-Origin"] == "fallback"
    assert json.loads(answer.body)["error"] == "NotAnImage"


def test_a_refusal_through_the_emulator_is_json_not_a_page(
    cdn_of: Callable[[Settings], tuple[Distribution, LocalS3]],
) -> None:
    settings = Settings(primary_bucket="svg-origin", fallback_bucket="svg-fallback")
    distribution, storage = cdn_of(settings)
    storage.put_original("upload/evil.png", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>')
    # 415 is cached when the origin says max-age or s-maxage ("How CloudFront processes and caches HTTP
    # 4xx and 5xx status codes from your origin"): the second answer comes from CloudFront's cache
    for cache in ("Miss", "Hit"):
        answer = distribution.request("GET", "/upload/evil.png", "w=320", {"Accept": "image/webp"})
        assert (answer.status, answer.headers["Content-Type"], answer.headers["X-Cache"]) == (
            415,
            "application/json",
            cache,
        )
        assert json.loads(answer.body)["error"] == "UnsupportedImage"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"


# -- end to end, as an uploader and a stranger would do it, through `python -m localcdn` -------------


def test_an_uploaded_bomb_is_refused_until_it_is_replaced(cdn: Any) -> None:
    bomb = gif_of([(1, 1)] * 201)  # one frame over the limit: refused from its header
    assert cdn.request("PUT", "/_localcdn/originals/abuse/upload.gif", bomb).status == 200
    for _ in range(3):
        refused = cdn.get("/abuse/upload.gif?w=320", "image/webp")
        assert (refused.status, refused.json()["error"]) == (413, "TooManyFrames")
        assert refused.header("Content-Type") == "application/json"
    listed = cdn.get("/_localcdn/variants").json()["abuse/upload.gif"]["variants"]
    assert [row["spec"] for row in listed] == ["w_320_q_60.webp"]  # the tombstone, where S3 answers for the path
    # Replaced: the upload's event drops what was kept for the old version and invalidates its paths
    fixed = samples.jpeg(samples.photo(640, 480, seed=7))
    assert cdn.request("PUT", "/_localcdn/originals/abuse/upload.gif", fixed).status == 200
    served = cdn.get("/abuse/upload.gif?w=320", "image/webp")
    assert served.status == 200 and served.header("Content-Type") == "image/webp"
    assert Image.open(io.BytesIO(served.body)).size == (320, 240)


def test_a_range_request_for_a_refused_variant_gets_the_whole_refusal(
    cdn_of: Callable[[Settings], tuple[Distribution, LocalS3]],
) -> None:
    settings = Settings(primary_bucket="range-origin", fallback_bucket="range-fallback")
    distribution, storage = cdn_of(settings)
    storage.put_original("u/bad.gif", gif_of([(1, 1)] * 201))
    whole = distribution.request("GET", "/u/bad.gif", "w=320&fm=webp", {})
    for asked in ("bytes=0-9", "bytes=5-", "bytes=-3"):  # S3 answers the tombstone's range with a 206
        answer = distribution.request("GET", "/u/bad.gif", "w=320&fm=webp", {"Range": asked})
        assert (answer.status, answer.body) == (413, whole.body), asked
        assert "Content-Range" not in answer.headers
