"""What an original may cost, in one table, and the checks that hold it before anything is decoded.

Three places take an original and must give it the same verdict: `resize` (a variant on a miss,
and its memory of a refusal, `variants/<key>/_refused.<etag>`), the sync job's builds
(`imaging.render_set`) and the catalogue's metadata function (`catalog/metadata.py`). All three
open an original through `imaging`, which runs these checks in this order, then Pillow's header
read, then the same checks on what Pillow reports:

1. bytes: the object's size, known before its body is read (`check_size`);
2. what the container's own headers declare (`inspect`): the canvas and the frame count of GIF,
   WebP and ISOBMFF (AVIF, HEIF) files, read without decoding a pixel, and without letting
   Pillow's own readers at the data first: a GIF's `n_frames` walks every frame (1.8 s for a
   23 MB GIF of a million 1x1 frames), a WebP's open demuxes every frame (190 ms and 150 MB for
   a million), an AVIF's open allocates its whole sample table (160 ms and 175 MB for two million
   declared samples). Frames are counted only up to `max_frames + 1`;
3. pixels of one frame, frames, then pixels over all frames (`check_image`).

A refusal is an `ImageError` with its HTTP status. `of_original` says whether it is about the
original (the same for every variant of this version: remembered and answered from memory) or
only about one variant (the output format's side limit, a bad parameter).

Nothing here imports Pillow (the checks run on bytes), nor anything a cold start of resize would
notice: `resize` imports this module before its first miss.
"""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

from edge.problems import Problem
from edge.settings import Settings

_DEFAULTS = Settings()


class ImageError(Problem):
    """An input image or a request for it that the service refuses."""

    error = "InvalidImage"
    of_original = True
    """The verdict holds for the original's version, whatever variant is asked for."""

    def __init__(self, expected: str, received: object, *, parameter: str = "image"):
        super().__init__(parameter, expected, received)


class UnsupportedImage(ImageError):
    status = 415
    error = "UnsupportedImage"


class UndecodableImage(ImageError):
    status = 422
    error = "UndecodableImage"


class TooManyPixels(ImageError):
    status = 413
    error = "TooManyPixels"


class InputTooLarge(ImageError):
    status = 413
    error = "InputTooLarge"


class TooManyFrames(ImageError):
    status = 413
    error = "TooManyFrames"


class UnencodableImage(ImageError):
    """The result would not fit the output format (e.g. a 1x100000 strip as WebP): this variant only."""

    status = 422
    error = "UnencodableImage"
    of_original = False


class InvalidTransform(ImageError):
    status = 400
    error = "InvalidParameter"
    of_original = False


class Limits(NamedTuple):
    """What one original may consume (stack config: maxInputBytes, maxPixels, maxFrames).

    A NamedTuple, not a dataclass: resize imports this module on every cold start, and
    `dataclasses` alone costs a few milliseconds there."""

    max_input_bytes: int = _DEFAULTS.max_input_bytes
    max_pixels: int = _DEFAULTS.max_pixels
    max_frames: int = _DEFAULTS.max_frames

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.max_input_bytes, settings.max_pixels, settings.max_frames)


class Header(NamedTuple):
    """What a container declares before any pixel is decoded (None: it does not say, or not cheaply)."""

    width: int | None
    height: int | None
    frames: int | None
    exact: bool = True
    """False when counting stopped at `max_frames + 1`: there are at least that many."""


NOTHING = Header(None, None, None)


def check_size(size: int, limits: Limits) -> None:
    """Bytes, the first check: costs nothing (S3 says the size before the body is read)."""
    if size > limits.max_input_bytes:
        raise InputTooLarge(f"at most {limits.max_input_bytes} bytes", f"{size} bytes")


def check_image(
    width: int | None, height: int | None, frames: int | None, limits: Limits, *, exact: bool = True
) -> None:
    """Pixels of one frame, then frames, then pixels over all frames; what is None is not checked."""
    if width is not None and height is not None and width * height > limits.max_pixels:
        raise TooManyPixels(f"at most {limits.max_pixels} pixels", f"{width}x{height}")
    if frames is None:
        return
    if frames > limits.max_frames:
        raise TooManyFrames(
            f"at most {limits.max_frames} frames", frames if exact else f"more than {limits.max_frames}"
        )
    if frames > 1 and width is not None and height is not None and frames * width * height > limits.max_pixels:
        raise TooManyPixels(
            f"at most {limits.max_pixels} pixels over all frames", f"{frames} frames of {width}x{height}"
        )


def inspect(data: bytes, limits: Limits) -> Header:
    """What a GIF's, a WebP's or an ISOBMFF file's (AVIF, HEIF) own headers declare; NOTHING for
    other formats (JPEG and PNG: Pillow's header read is cheap and says it all, APNG's frame count
    included: it is the acTL chunk's, which Pillow reads before the first IDAT).

    Never refuses by itself: a structure it cannot follow ends the walk with what was counted, and
    Pillow then judges whether the file is an image at all.
    """
    stop = limits.max_frames + 1
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(data, stop)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data, stop)
    if data[4:8] == b"ftyp":
        return _isobmff(data)
    return NOTHING


# -- GIF -----------------------------------------------------------------------------------------
# Pillow's GIF reader (GifImagePlugin, the version vendored) skips a byte it does not know, counts a
# frame at each image descriptor, and grows the image to the largest frame extent when it reaches
# that frame: a 1x1 screen with a 65535x65535 second frame is an 85-byte file that made a render
# allocate gigabytes before this check. So the canvas is the largest extent of any counted frame.
_BLOCK_START = re.compile(rb"[!,;]")


def _gif(data: bytes, stop: int) -> Header:
    """Cost: one step per block (extensions and frames) up to `stop` frames, plus one per data
    sub-block of those frames: at most 255 bytes each from an ordinary encoder, so about
    size/256 steps. Measured here: a million-frame GIF stops after 201 frames (0.2 ms, against
    1.8 s for Pillow's `n_frames`); 16.7 MB of 200 frames of 500x500, 9.6 ms (Pillow: 8.5 ms);
    50 MB of ordinary sub-blocks, 13 ms; 50 MB of 1-byte sub-blocks (valid, written by no
    encoder), 1.1 s, the worst a file within maxInputBytes can make it. Bytes Pillow would skip
    are jumped over by a regular expression, in C."""
    size = len(data)
    if size < 13:
        return NOTHING
    width, height = struct.unpack_from("<HH", data, 6)
    flags = data[10]
    at = 13 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
    frames = 0
    while at < size and frames < stop:
        tag = data[at]
        if tag == 0x3B:  # trailer
            break
        if tag == 0x21:  # extension: its label, then data sub-blocks, read as Pillow reads them
            label = data[at + 1] if at + 1 < size else 0
            first = data[at + 2] if at + 2 < size else 0
            at += 3 + first
            if label == 0xFE:  # a comment: its sub-blocks, to the terminator
                if first:
                    at = _skip_sub_blocks(data, at)
                continue
            if label == 0xFF and not frames and data[at - first : at].startswith(b"NETSCAPE2.0"):
                at += 1 + (data[at] if at < size else 0)  # the loop count's sub-block, read on its own
            # Then sub-blocks to a terminator, after the first one even when the first was the
            # terminator (an empty extension): Pillow does, so the count and the extents agree with it.
            at = _skip_sub_blocks(data, at)
        elif tag == 0x2C:  # image descriptor: a frame
            if at + 10 > size:
                break
            left, top, frame_width, frame_height = struct.unpack_from("<HHHH", data, at + 1)
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            frames += 1
            local = data[at + 9]
            at += 10 + ((3 << ((local & 7) + 1)) if local & 0x80 else 0) + 1  # + LZW minimum code size
            at = _skip_sub_blocks(data, at)
        else:
            found = _BLOCK_START.search(data, at + 1)
            if found is None:
                break
            at = found.start()
    return Header(width, height, frames, exact=frames < stop)


def _skip_sub_blocks(data: bytes, at: int) -> int:
    size = len(data)
    while at < size:
        length = data[at]
        at += 1 + length
        if not length:
            break
    return at


# -- WebP ----------------------------------------------------------------------------------------


def _webp(data: bytes, stop: int) -> Header:
    """Cost: one step per RIFF chunk (each says its own length) up to `stop` ANMF chunks. The
    canvas is VP8X's (every frame of an animation must fit in it); a simple WebP (VP8, VP8L) has
    no VP8X and one frame, its size read by Pillow."""
    size = len(data)
    width = height = None
    frames = 0
    at = 12
    while at + 8 <= size and frames < stop:
        kind = data[at : at + 4]
        (length,) = struct.unpack_from("<I", data, at + 4)
        if kind == b"VP8X" and length >= 10 and at + 18 <= size:
            width = 1 + int.from_bytes(data[at + 12 : at + 15], "little")
            height = 1 + int.from_bytes(data[at + 15 : at + 18], "little")
        elif kind == b"ANMF":
            frames += 1
        at += 8 + length + (length & 1)
    return Header(width, height, max(frames, 1), exact=frames < stop)


# -- ISOBMFF (AVIF, HEIF) ------------------------------------------------------------------------
# Boxes on the way to an image sequence's sample table ("moov/trak/mdia/minf/stbl"): its `stsz`
# (or `stz2`) says how many samples (frames) the track has, in one field.
_PATH = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
_BOX_LIMIT = 10_000


def _isobmff(data: bytes) -> Header:
    """Cost: one step per box visited (the top level, and the boxes below `moov` on the way to
    the sample tables), at most `_BOX_LIMIT`. Frames: the most samples any track declares (libavif
    allocates a sample table entry per declared sample when it opens the file). The images of a
    HEIF file (its top-level items) are counted by pillow-heif when it opens it, under libheif's
    own security limits; their size by Pillow and pillow-heif, from `ispe`."""
    most = 0
    visited = 0
    pending = [(0, len(data), 0)]
    while pending and visited < _BOX_LIMIT:
        at, end, depth = pending.pop()
        while at + 8 <= end and visited < _BOX_LIMIT:
            visited += 1
            length, kind = struct.unpack_from(">I4s", data, at)
            head = 8
            if length == 1 and at + 16 <= end:
                (length,) = struct.unpack_from(">Q", data, at + 8)
                head = 16
            elif length == 0:
                length = end - at
            if length < head:
                break
            if depth < len(_PATH) and kind == _PATH[depth]:
                pending.append((at + head, min(at + length, end), depth + 1))
            elif depth == len(_PATH) and kind in (b"stsz", b"stz2") and at + head + 12 <= end:
                # full box (version, flags), then sample_size (stsz) or reserved + field_size (stz2)
                (count,) = struct.unpack_from(">I", data, at + head + 8)
                most = max(most, count)
            at += length
    return Header(None, None, most or None)
