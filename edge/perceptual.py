"""SSIMULACRA 2 in numpy: how far an encode looks from the pixels it was made of.

`q=auto` (edge/imaging.py) picks, per variant, the smallest encode whose SSIMULACRA 2 score
against the resized source meets the stack's target. This is that score, the metric of
libjxl's `tools/ssimulacra2.cc` (Jon Sneyers, Cloudinary; 100 = identical, 90 visually
lossless, 70 high quality, 50 medium), computed the same way:

- both images in linear sRGB (alpha blended onto grey), downscaled 2x2 in linear light for
  six scales (1:1 to 1:32, until a side is under 8 pixels);
- at each scale, XYB (jxl's opsin absorbance, cube root), shifted to about 0..1;
- per channel: the SSIM map without the luma denominator, and two edge maps (ringing: edges
  in the encode where the source is smooth; blur: the other way round), each reduced to its
  1-norm and 4-norm: 108 numbers, weighted with libjxl's weights and mapped to 0..100.

Why our own and not PyPI's `ssimulacra2`: that package needs scipy (for one Gaussian
filter), and scipy's manylinux wheel is ~36 MB zipped: with numpy (~17 MB), Pillow,
pillow-heif and obstore the resize bundle would pass Lambda@Edge's 50 MB limit for origin
functions (`components/bundle.py`; measured in the issue's notes of this change). numpy alone
fits. The one difference from libjxl: its blur is a recursive (IIR) approximation of a
Gaussian with sigma 1.5; this is the sampled Gaussian itself, with the same zero borders and
radius. `tests/test_quality_auto.py` checks the scores against a reference implementation
(PyPI's `ssimulacra2`, a port of libjxl's tool: within 0.05 on a set of photos in three codecs and
blur, once its own border handling is given to ours) and ranks against libjxl's `ssimulacra_main`.

The reference side (the resized source) is prepared once per variant (`Reference`); each
candidate encode then costs one pass over its own pixels.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]

SCALES = 6
_C2 = 0.0009
# jxl's opsin absorbance matrix and bias (lib/jxl/opsin_params.h).
_OPSIN = np.array(
    [
        [0.30, 0.622, 0.078],
        [0.23, 0.692, 0.078],
        [0.24342268924547819, 0.20476744424496821, 1.0 - 0.24342268924547819 - 0.20476744424496821],
    ],
    dtype=np.float32,
)
_BIAS = np.float32(0.0037930732552754493)
_BIAS_CBRT = np.float32(np.cbrt(0.0037930732552754493))
_SIGMA = 1.5
_RADIUS = round(3.2795 * _SIGMA + 0.2546)  # libjxl's radius for its recursive Gaussian: 5
_TAPS = np.exp(-0.5 * (np.arange(-_RADIUS, _RADIUS + 1) / _SIGMA) ** 2)
_KERNEL = (_TAPS / _TAPS.sum()).astype(np.float32)
# libjxl's 108 weights: for each channel (X, Y, B), scale (1:1 .. 1:32) and norm (1, 4):
# SSIM, ringing, blur.
_WEIGHTS = np.array(
    [
        0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0, 0.0004371155730107379,
        0.0, 1.1041726426657346, 0.00066284834129271, 0.00015231632783718752, 0.0, 0.0016406437456599754,
        0.0, 1.8422455520539298, 11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653,
        0.0, 1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833,
        0.0, 0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053, 0.0004550992113792063,
        0.0, 0.0, 0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0,
        17.445833984131262, 0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296,
        1.027889937768264, 225.20515300849274, 0.0, 0.0, 19.213238186143016, 0.0011401524586618361,
        0.001237755635509985, 176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757,
        0.0004485436923833408, 0.0, 0.0, 0.0, 34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0,
        0.0, 0.0, 0.0, 0.0, 0.0, 0.0008680556573291698, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0,
        0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0,
        8.826982764996862, 23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682,
        0.9834382792465353, 0.0012286405048278493, 171.2667255897307, 0.9807858872435379, 0.0, 0.0,
        0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
    ]
)  # fmt: skip
# sRGB code value -> linear light, for 8-bit input.
_LINEAR = np.array(
    [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in (i / 255 for i in range(256))],
    dtype=np.float32,
)


def linear(pixels: NDArray[np.uint8], background: float = 0.5) -> Array:
    """8-bit sRGB (H x W x 3, or x 4 with alpha) -> linear RGB planes (3 x H x W), alpha blended
    onto `background` (in sRGB's encoded 0..1, as libjxl blends before linearising)."""
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    if pixels.shape[2] == 4:
        alpha = pixels[:, :, 3:4].astype(np.float32) / 255
        blended = pixels[:, :, :3].astype(np.float32) / 255 * alpha + background * (1 - alpha)
        encoded = np.clip(blended, 0, 1)
        rgb = np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)
        return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)
    return np.ascontiguousarray(_LINEAR[pixels[:, :, :3]].transpose(2, 0, 1))


def _downsample(image: Array) -> Array:
    """2x2 box average; an odd last row or column repeats its edge (libjxl's Downsample)."""
    _, height, width = image.shape
    if height % 2:
        image = np.concatenate([image, image[:, -1:, :]], axis=1)
    if width % 2:
        image = np.concatenate([image, image[:, :, -1:]], axis=2)
    return (image[:, 0::2, 0::2] + image[:, 1::2, 0::2] + image[:, 0::2, 1::2] + image[:, 1::2, 1::2]) * np.float32(
        0.25
    )


def _xyb(rgb: Array, channels: tuple[int, ...] = (0, 1, 2)) -> Array:
    """Linear RGB planes -> the XYB planes in `channels` (0 X, 1 Y, 2 B), made positive (libjxl's
    ToXYB then MakePositiveXYB). X and Y need only the first two mixes; B all three."""
    mixes = 3 if 2 in channels else 2
    # einsum's own loop, not BLAS: a 3x3 product is too small for BLAS's threads to pay for
    # themselves, and on a busy machine they cost more than the product (measured: 2x the score)
    mixed = np.einsum("ij,jhw->ihw", _OPSIN[:mixes], rgb) + _BIAS
    np.maximum(mixed, 0, out=mixed)
    cube = np.power(mixed, np.float32(1 / 3)) - _BIAS_CBRT  # np.cbrt is three times slower on float32
    y = (cube[0] + cube[1]) * np.float32(0.5)
    planes = {
        0: lambda: (cube[0] - cube[1]) * np.float32(0.5) * np.float32(14) + np.float32(0.42),
        1: lambda: y + np.float32(0.01),
        2: lambda: (cube[2] - y) + np.float32(0.55),
    }
    return np.stack([planes[channel]() for channel in channels])


def _blur_axis(image: Array, axis: int, mode: Literal["constant", "symmetric"] = "constant") -> Array:
    """The Gaussian along one axis. Beyond the border: zeros (`mode` "constant"), as libjxl's
    FastGaussian ("zero-pad boundary handling", lib/jxl/gauss_blur.h); the test passes another
    mode to compare with a reference that mirrors there."""
    length = image.shape[axis]
    if mode == "constant":  # zeros around a copy: np.pad's general path costs more than the copy
        shape = list(image.shape)
        shape[axis] += 2 * _RADIUS
        padded: Array = np.zeros(shape, dtype=image.dtype)
        inner = [slice(None)] * image.ndim
        inner[axis] = slice(_RADIUS, _RADIUS + length)
        padded[tuple(inner)] = image
    else:
        pad = [(0, 0)] * image.ndim
        pad[axis] = (_RADIUS, _RADIUS)
        padded = np.pad(image, pad, mode=mode)
    out = np.empty_like(image)

    def window(offset: int) -> Array:
        index = [slice(None)] * image.ndim
        index[axis] = slice(offset, offset + length)
        return padded[tuple(index)]

    pair = np.empty_like(image)
    np.multiply(window(_RADIUS), _KERNEL[_RADIUS], out=out)
    for tap in range(_RADIUS):  # symmetric: one multiply per pair of taps, no temporaries
        np.add(window(tap), window(2 * _RADIUS - tap), out=pair)
        pair *= _KERNEL[tap]
        out += pair
    return out


_SMALL_PLANE = 128 * 128


def _blur(image: Array) -> Array:
    """Both axes, one plane at a time: a plane of a 320 px variant (about 330 KB) stays in the
    CPU's cache through the eleven taps of both passes, which makes the blur about twice as fast
    as passing the whole stack (measured in `make bench`, "q=auto"). A stack of small planes (the
    coarser scales) fits the cache whole and is passed at once: there numpy's per-call overhead
    is what costs."""
    if image.shape[0] == 1 or image.shape[1] * image.shape[2] <= _SMALL_PLANE:
        return _blur_axis(_blur_axis(image, 2), 1)
    out = np.empty_like(image)
    for plane in range(image.shape[0]):
        out[plane] = _blur_axis(_blur_axis(image[plane : plane + 1], 2), 1)[0]
    return out


def _sums(error: Array) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per channel: the sum and the sum of 4th powers of a non-negative error map (C x H x W)."""
    flat = error.reshape(error.shape[0], -1)
    squared = flat * flat
    squared *= squared
    # float32 maps, float64 sums (numpy's pairwise summation, in float64 accumulators)
    return flat.sum(axis=1, dtype=np.float64), squared.sum(axis=1, dtype=np.float64)


class _Scale:
    """One scale of the reference, with what every candidate's score reads of it computed once:
    its blurred mean, its variance (sigma11 - mu1^2) and 1 + |img1 - mu1| of the edge maps, for
    the XYB channels that count at this scale (`channels`; none: the scale is only counted)."""

    __slots__ = ("channels", "detail", "index", "mu", "variance", "xyb")

    def __init__(self, rgb: Array, channels: tuple[int, ...]) -> None:
        self.channels = channels
        self.index = np.array(channels, dtype=np.intp)
        if not channels:
            return
        xyb = _xyb(rgb, channels)
        self.xyb = xyb
        self.mu = _blur(xyb)
        self.variance = _blur(xyb * xyb) - self.mu * self.mu
        self.detail = np.float32(1.0) + np.abs(xyb - self.mu)


# libjxl's 108 weights are either ones that count (the smallest is 0.285) or ones of at most
# 0.0021, two orders of magnitude below. A channel whose every weight at a scale is of the second
# kind is left out of that scale: at full size only Y counts (X's and B's weights there are under
# 0.001), and the full size is three quarters of the work, so a score costs about half as much.
# What it changes: at most 0.004 points on 390 encodes of bench/quality_auto.py's photos (three
# codecs, three widths) against the full computation (`exact=True`); tests/test_quality_auto.py
# holds it within 0.01 on its validation set.
NEGLIGIBLE = 0.01


def _scale_count(height: int, width: int) -> int:
    """How many scales an image of this size has (the next is computed while both sides are >= 8)."""
    count = 1
    while count < SCALES and height >= 8 and width >= 8:
        height, width = (height + 1) // 2, (width + 1) // 2
        count += 1
    return count


def _channels(present: int, exact: bool) -> list[tuple[int, ...]]:
    """Per scale, the channels to compute for an image of `present` scales. libjxl walks its
    weights in order over the scales it computed (see `_final`), so which weight a channel and
    scale read depends on `present`."""
    if exact:
        return [(0, 1, 2)] * present
    weights = np.abs(_WEIGHTS[: 3 * present * 6]).reshape(3, present, 6)
    return [tuple(c for c in range(3) if weights[c, scale].max() >= NEGLIGIBLE) for scale in range(present)]


# Past this many pixels the score is taken over tiles of the image rather than all of it: a
# 1280 px variant costs 5x a 320 px one per candidate otherwise, paid up to twice per miss.
# The tiles (TILE x TILE, evenly spread) are scored like whole images and their norms pooled.
# An image at or under the budget (a 512 x 512 variant, every one up to 320 px wide) is scored whole.
PIXEL_BUDGET = 512 * 512
TILE = 256


def tiles(width: int, height: int, budget: int = PIXEL_BUDGET) -> list[tuple[int, int, int, int]]:
    """The boxes (left, top, right, bottom) an image of this size is scored over."""
    if width * height <= budget or width < TILE or height < TILE:
        return [(0, 0, width, height)]
    columns, rows = width // TILE, height // TILE
    # The grid is centred; `count` of its cells are taken at an even stride through it.
    left0, top0 = (width - columns * TILE) // 2, (height - rows * TILE) // 2
    cells = [(row, column) for row in range(rows) for column in range(columns)]
    count = min(len(cells), max(1, budget // (TILE * TILE)))
    chosen = (
        [cells[round(i * (len(cells) - 1) / max(1, count - 1))] for i in range(count)]
        if count > 1
        else [cells[len(cells) // 2]]
    )
    return [(left0 + c * TILE, top0 + r * TILE, left0 + (c + 1) * TILE, top0 + (r + 1) * TILE) for r, c in chosen]


class Reference:
    """The pixels an encode is judged against: their six scales prepared once.

    `pixels`: 8-bit sRGB, H x W x 3 (or 4 with alpha, H x W grey), e.g. `np.asarray(image)`.
    """

    def __init__(self, pixels: NDArray[np.uint8], budget: int = PIXEL_BUDGET, exact: bool = False) -> None:
        self.shape = pixels.shape
        self.alpha = pixels.ndim == 3 and pixels.shape[2] == 4
        self.boxes = tiles(pixels.shape[1], pixels.shape[0], budget)
        # With alpha, libjxl's tool scores on a dark and on a light background and keeps the worse.
        self.backgrounds = (0.1, 0.9) if self.alpha else (0.5,)
        self.scales = [
            [self._prepare(linear(_cut(pixels, box), background), exact) for box in self.boxes]
            for background in self.backgrounds
        ]

    @staticmethod
    def _prepare(rgb: Array, exact: bool) -> list[_Scale]:
        scales = []
        for scale, channels in enumerate(_channels(_scale_count(rgb.shape[1], rgb.shape[2]), exact)):
            if scale:
                rgb = _downsample(rgb)
            scales.append(_Scale(rgb, channels))
        return scales

    def score(self, pixels: NDArray[np.uint8]) -> float:
        """SSIMULACRA 2 of `pixels` (same shape as the reference) against the reference."""
        if pixels.shape[:2] != self.shape[:2]:
            raise ValueError(f"distorted image is {pixels.shape[:2]}, reference {self.shape[:2]}")
        scores = []
        for prepared, background in zip(self.scales, self.backgrounds, strict=True):
            sums = np.zeros((SCALES, 3, 6))
            counts = np.zeros(SCALES)
            for box, reference in zip(self.boxes, prepared, strict=True):
                _accumulate(reference, linear(_cut(pixels, box), background), sums, counts)
            scores.append(_final(sums, counts))
        return min(scores)


def _cut(pixels: NDArray[np.uint8], box: tuple[int, int, int, int]) -> NDArray[np.uint8]:
    left, top, right, bottom = box
    return pixels[top:bottom, left:right]


def _accumulate(reference: list[_Scale], rgb: Array, sums: NDArray[np.float64], counts: NDArray[np.float64]) -> None:
    """Add one image's (or tile's) error sums per scale and channel: SSIM, ringing and blur,
    each as a sum and a sum of 4th powers."""
    for index, ours in enumerate(reference):
        if index:
            rgb = _downsample(rgb)
        counts[index] += rgb.shape[1] * rgb.shape[2]
        if not ours.channels:
            continue
        img2 = _xyb(rgb, ours.channels)
        # One blur over the planes: fewer passes of numpy's per-call overhead.
        mu2, sigma22, sigma12 = _blur(np.concatenate([img2, img2 * img2, ours.xyb * img2])).reshape(3, *img2.shape)
        mu1 = ours.mu
        # libjxl's SSIMMap and EdgeDiffMap, in place (each temporary is a pass over memory):
        # d = max(1 - (1 - (mu1 - mu2)^2) * (2 (s12 - mu1 mu2) + C2) / (s11' + s22 - mu2^2 + C2), 0)
        mixed = mu1 * mu2
        sigma12 -= mixed
        sigma12 *= np.float32(2)
        sigma12 += np.float32(_C2)  # num_s
        squared = mu2 * mu2
        sigma22 -= squared
        sigma22 += ours.variance
        sigma22 += np.float32(_C2)  # denom_s
        np.subtract(mu1, mu2, out=mixed)
        mixed *= mixed
        np.subtract(np.float32(1), mixed, out=mixed)  # num_m
        mixed *= sigma12
        mixed /= sigma22
        np.subtract(np.float32(1), mixed, out=mixed)
        d = np.maximum(mixed, np.float32(0), out=mixed)
        # ringing and blur: (1 + |img2 - mu2|) / (1 + |img1 - mu1|) - 1, its positive and negative parts
        ratio = np.subtract(img2, mu2, out=squared)
        np.abs(ratio, out=ratio)
        ratio += np.float32(1)
        ratio /= ours.detail  # a division, as libjxl: identical pixels give exactly 0
        ratio -= np.float32(1)
        for slot, error in enumerate((d, np.maximum(ratio, 0), np.maximum(-ratio, 0))):
            first, fourth = _sums(error)
            sums[index, ours.index, 2 * slot] += first
            sums[index, ours.index, 2 * slot + 1] += fourth


def _final(sums: NDArray[np.float64], counts: NDArray[np.float64]) -> float:
    """libjxl's Msssim::Score: the norms of the scales computed, weighted, mapped to 0..100."""
    present = int(np.count_nonzero(counts))
    means = sums[:present] / counts[:present, None, None]
    norms = means.copy()
    norms[:, :, 1::2] = np.sqrt(np.sqrt(means[:, :, 1::2]))
    # The weights' order: channel, scale, norm (1, 4), then SSIM, ringing, blur; libjxl walks them
    # in that order over the scales it computed, so an image with fewer than six scales (under
    # about 256 px) reads the first weights of the list for each channel, as there.
    terms = norms.reshape(present, 3, 3, 2).transpose(1, 0, 3, 2)
    total = float(np.dot(_WEIGHTS[: terms.size], np.abs(terms).reshape(-1))) * 0.9562382616834844
    total = 2.326765642916932 * total - 0.020884521182843837 * total**2 + 6.248496625763138e-05 * total**3
    return 100.0 - 10.0 * total**0.6276336467831387 if total > 0 else 100.0


def ssimulacra2(reference: NDArray[np.uint8], distorted: NDArray[np.uint8], exact: bool = False) -> float:
    """SSIMULACRA 2 of `distorted` against `reference` (both 8-bit sRGB arrays of one size);
    `exact`: every channel at every scale, the negligible weights too (see NEGLIGIBLE)."""
    return Reference(reference, exact=exact).score(distorted)
