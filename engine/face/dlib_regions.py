"""dlib's HOG detection inside parts of a frame, with the boxes of a full-frame detection.

dlib's frontal face detector scans a pyramid of the frame (each level 5/6 of the one
before, bilinear) with 80x80 HOG windows on an 8-pixel cell grid, then keeps the best of
overlapping boxes. A crop of the frame has a pyramid of its own: its levels sample other
points of the frame and its cells fall elsewhere, so the detector run on a crop moves
boxes by up to a cell of the level that found the face (on 107 frames of nggyup.mp4 with
the crop around the last box: a mean of 13 px, up to 59 px, never the same box), and the
68 landmarks move with the box.

This module reproduces the frame's own pyramid around a region instead. Each level's
pixels are computed only where they are needed, with the arithmetic of dlib's
`pyramid_down<6>` (`resize_image`, bilinear: float32 four-lane blocks, then a double
tail), which is bit-exact with `dlib.pyramid_down` (`pyramid_matches_dlib` checks it
when a detector opens). A level is cropped at multiples of 8, so its HOG cells are the
frame's, and scanned by a copy of the detector limited to one pyramid level; boxes
within `GUARD` pixels of a cut edge are set aside (their windows read the cut). Boxes are
mapped to the frame with dlib's own `rect_up` and merged with the detector's own
overlap rule. A face inside a region therefore gets the box, the score and the landmarks
a full-frame detection gives it, provided the levels searched (`spread` around the
level of the face's size) hold its best box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ghost_engine.face.detection_budget import FOUND_IOU
from ghost_engine.face.tracking import box_iou

# Pixels of a level kept clear between an accepted box and an edge where the level was
# cut: a box's window and the cells that bin and normalise it read past the box
# (measured on a level-6 face of nggyup.mp4: its score is the full-frame one from 21 px
# on the left and top, 16 px on the right and bottom, and differs at 13 and 8 px).
GUARD = 24
CELL = 8  # dlib's HOG cell: crops of a level start at multiples of it
# The side of a box found on level 0 (80x80 window); level j boxes are about 6/5^j of it.
LEVEL0_SIDE = 73
RATE = 6 / 5


# -- the pyramid ------------------------------------------------------------------------


@dataclass(frozen=True)
class PyramidStep:
    """One `pyramid_down<6>` step from an (h, w) image: where each output pixel samples.

    Rows follow dlib's double-precision `y += y_scale`; columns are four-lane float32
    blocks (`x += 4 * x_scale`) for as long as the last lane's right neighbour is inside
    the image, then double precision for the last few (`simd`: which columns are which).
    """

    in_size: tuple[int, int]  # (h, w)
    out_size: tuple[int, int]
    top: np.ndarray
    bottom: np.ndarray
    tb: np.ndarray  # float64 row fractions
    left: np.ndarray
    right: np.ndarray
    lr32: np.ndarray  # float32 column fractions (four-lane blocks)
    lr64: np.ndarray  # float64 column fractions (the tail)
    simd: np.ndarray  # bool per output column

    def source(self, rows: tuple[int, int], cols: tuple[int, int]) -> tuple[int, int, int, int]:
        """The input rectangle (y0, y1, x0, x1) that output rows/cols [a, b) read."""
        return (
            int(self.top[rows[0]]),
            int(self.bottom[rows[1] - 1]) + 1,
            int(self.left[cols[0]]),
            int(self.right[cols[1] - 1]) + 1,
        )

    def apply(
        self,
        planes: np.ndarray,
        origin: tuple[int, int],
        rows: tuple[int, int],
        cols: tuple[int, int],
    ) -> np.ndarray:
        """Output rows/cols [a, b) as (3, rows, cols) float32 planes of whole values, from
        `planes`, the input's (3, h, w) planes from `origin` (y, x). Planes keep each
        channel's gathers and sums contiguous (numpy is about 8x slower than dlib per pixel
        even so)."""
        r = slice(*rows)
        c = slice(*cols)
        above = np.take(planes, self.top[r] - origin[0], axis=1)
        below = np.take(planes, self.bottom[r] - origin[0], axis=1)
        left, right = self.left[c] - origin[1], self.right[c] - origin[1]
        tb = self.tb[r][:, None]
        simd = self.simd[c]
        n_simd = int(simd.sum())  # the four-lane columns come first
        out = np.empty((3, rows[1] - rows[0], cols[1] - cols[0]), np.float32)
        if n_simd:
            k = slice(0, n_simd)
            tbf, itbf = tb.astype(np.float32), (1.0 - tb).astype(np.float32)
            lrf = self.lr32[c][k][None, :]
            ilrf = np.float32(1.0) - lrf
            value = np.take(above, left[k], axis=2)
            value *= itbf * ilrf
            part = np.take(above, right[k], axis=2)
            part *= itbf * lrf
            value += part
            np.take(below, left[k], axis=2, out=part)
            part *= tbf * ilrf
            value += part
            np.take(below, right[k], axis=2, out=part)
            part *= tbf * lrf
            value += part
            out[:, :, k] = np.trunc(value)  # dlib truncates to uint8
        if n_simd < len(simd):
            k = slice(n_simd, None)
            lr = self.lr64[c][k][None, :]
            tl, tr = np.take(above, left[k], axis=2), np.take(above, right[k], axis=2)
            bl, br = np.take(below, left[k], axis=2), np.take(below, right[k], axis=2)
            value64 = (1 - tb) * ((1 - lr) * tl + lr * tr) + tb * ((1 - lr) * bl + lr * br)
            out[:, :, k] = np.trunc(value64)
        return out


def to_planes(image: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (3, h, w) float32."""
    return np.ascontiguousarray(np.moveaxis(image, 2, 0), dtype=np.float32)


def from_planes(planes: np.ndarray) -> np.ndarray:
    """(3, h, w) float32 of whole values -> (h, w, 3) uint8."""
    return np.ascontiguousarray(np.moveaxis(planes, 0, 2).astype(np.uint8))


@lru_cache(maxsize=64)
def pyramid_step(height: int, width: int) -> PyramidStep:
    """The `pyramid_down<6>` step from a (height, width) image (see `PyramidStep`)."""
    oh, ow = (5 * height) // 6, (5 * width) // 6
    ys = (height - 1) / max(oh - 1, 1)
    xs = (width - 1) / max(ow - 1, 1)
    y = np.add.accumulate(np.concatenate([[-ys], np.full(oh, ys)]))[1:]
    top = np.floor(y).astype(np.int64)
    tb = y - top
    # four-lane float32 blocks: lanes start at x, x + s, x + 2s, x + 3s (x = -4s) and step 4s
    x = -4 * xs
    lanes = np.array([x, x + xs, x + 2 * xs, x + 3 * xs], np.float64).astype(np.float32)
    blocks = ow // 4 + 2
    steps = np.concatenate([lanes[None], np.full((blocks, 4), np.float32(4 * xs))])
    xb = np.add.accumulate(steps.astype(np.float32), axis=0)[1:]
    fits = np.floor(xb[:, 3]).astype(np.int64) + 1 < width
    n_blocks = int(np.argmin(fits)) if not fits.all() else blocks
    simd_x = xb[:n_blocks].reshape(-1)[:ow]
    n_simd = len(simd_x)
    tail_x = np.add.accumulate(np.concatenate([[-xs + n_simd * xs], np.full(ow - n_simd, xs)]))
    tail_x = tail_x[1:]
    left32 = np.floor(simd_x).astype(np.int64)
    left64 = np.floor(tail_x).astype(np.int64)
    left = np.concatenate([left32, left64])
    right = np.concatenate([left32 + 1, np.minimum(left64 + 1, width - 1)])
    lr32 = np.concatenate([simd_x - left32.astype(np.float32), np.zeros(ow - n_simd, np.float32)])
    lr64 = np.concatenate([np.zeros(n_simd), tail_x - left64])
    simd = np.arange(ow) < n_simd
    return PyramidStep(
        (height, width),
        (oh, ow),
        top,
        np.minimum(top + 1, height - 1),
        tb,
        left,
        right,
        lr32.astype(np.float32),
        lr64,
        simd,
    )


def pyramid_down(image: np.ndarray) -> np.ndarray:
    """One whole pyramid step, as `dlib.pyramid_down(6)(image)`."""
    step = pyramid_step(*image.shape[:2])
    h, w = step.out_size
    return from_planes(step.apply(to_planes(image), (0, 0), (0, h), (0, w)))


def pyramid_matches_dlib(
    dlib: Any, sizes: tuple[tuple[int, int], ...] = ((97, 131), (64, 77))
) -> bool:
    """Whether `pyramid_down` equals this dlib build's own (random images, three levels)."""
    pyr = dlib.pyramid_down(6)
    rng = np.random.default_rng(0)
    for h, w in sizes:
        ours = theirs = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for _ in range(3):
            ours, theirs = pyramid_down(ours), np.asarray(pyr(np.ascontiguousarray(theirs)))
            if ours.shape != theirs.shape or not np.array_equal(ours, theirs):
                return False
    return True


# -- the detector limited to one level ------------------------------------------------------


@dataclass(frozen=True)
class DetectorLayout:
    """What the detector's serialized form says: its HOG cell, window and pyramid limits,
    and the overlap rule its non-max suppression uses (dlib's `test_box_overlap`)."""

    cell: int
    window: tuple[int, int]
    max_levels: int
    min_layer: tuple[int, int]
    iou: float
    covered: float


def _read_int(data: bytes, at: int) -> tuple[int, int]:
    """dlib's integer encoding: a byte with the length (low bits) and sign (0x80), then
    the magnitude little-endian."""
    head = data[at]
    size = head & 0x0F
    value = int.from_bytes(data[at + 1 : at + 1 + size], "little")
    return (-value if head & 0x80 else value), at + 1 + size


def _write_int(value: int) -> bytes:
    body = abs(value).to_bytes(max(1, (abs(value).bit_length() + 7) // 8), "little")
    return bytes([len(body) | (0x80 if value < 0 else 0)]) + body


def _read_float(data: bytes, at: int) -> tuple[float, int]:
    mantissa, at = _read_int(data, at)
    exponent, at = _read_int(data, at)
    return float(mantissa) * 2.0**exponent, at


def one_level_detector(dlib: Any, detector: Any) -> tuple[Any, DetectorLayout]:
    """A copy of an `fhog_object_detector` that scans only level 0 of its input, and the
    detector's layout. Reads its serialized form (its pickled state: object_detector
    version 2 holding a scan_fhog_pyramid version 1), in memory, so no file is written;
    raises ValueError when it is laid out otherwise."""
    try:
        state = detector.__getstate__()
    except (AttributeError, RuntimeError) as exc:
        raise ValueError(f"this dlib build does not expose its detector's state: {exc}") from exc
    if not (isinstance(state, tuple) and len(state) == 1 and isinstance(state[0], bytes)):
        raise ValueError(f"unexpected dlib detector state {type(state).__name__}")
    data = state[0]
    at, fields = 0, []
    for _ in range(11):  # versions, feature arrays, cell, padding, window, levels, layer
        value, after = _read_int(data, at)
        fields.append((value, at, after))
        at = after
    names = [v for v, _, _ in fields]
    if names[0] != 2 or names[1] != 1 or names[4] <= 0 or names[6] <= 0 or names[7] <= 0:
        raise ValueError(f"unexpected dlib detector layout {names}")
    _, at = _read_float(data, at)  # nuclear norm regularisation
    _, at = _read_int(data, at)  # number of feature dimensions
    iou, at = _read_float(data, at)
    covered, at = _read_float(data, at)
    if not (0.0 < iou <= 1.0 and 0.0 < covered <= 1.0):
        raise ValueError(f"unexpected dlib overlap rule iou={iou} covered={covered}")
    _, start, end = fields[8]  # max_pyramid_levels
    kind: Any = type(detector)
    one = kind.__new__(kind)
    try:
        one.__setstate__((data[:start] + _write_int(1) + data[end:],))
    except RuntimeError as exc:  # dlib's serialization_error
        raise ValueError(f"dlib refused the one-level detector: {exc}") from exc
    layout = DetectorLayout(
        cell=names[4],
        window=(names[6], names[7]),
        max_levels=names[8],
        min_layer=(names[9], names[10]),
        iou=iou,
        covered=covered,
    )
    return one, layout


def boxes_overlap(a: tuple[int, ...], b: tuple[int, ...], iou: float, covered: float) -> bool:
    """dlib's `test_box_overlap` on inclusive (left, top, right, bottom) boxes: the
    intersection over the box spanning both, or over either box."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return False
    inner = float(iw * ih)
    span = (max(a[2], b[2]) - min(a[0], b[0]) + 1) * (max(a[3], b[3]) - min(a[1], b[1]) + 1)
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inner / span > iou or inner / area_a > covered or inner / area_b > covered


# -- planning and searching a region ---------------------------------------------------------


@dataclass(frozen=True)
class LevelCrop:
    """One pyramid level searched for a region: its crop (y0, y1, x0, x1) in level pixels
    and which of its edges are cut (not the level's own border)."""

    level: int
    rect: tuple[int, int, int, int]
    cut: tuple[bool, bool, bool, bool]  # top, bottom, left, right


@dataclass(frozen=True)
class RegionLevels:
    """How one region is searched: the levels' crops and the rectangle of every level
    (`needed[j]`, level pixels) that computing them reads; `needed[0]` is the footprint
    in the image the pyramid starts from."""

    crops: tuple[LevelCrop, ...]
    needed: tuple[tuple[int, int, int, int], ...]
    face: tuple[float, float, float, float]  # the predicted face box (level 0)
    centre: int  # the level whose boxes are the predicted face's size

    def crop_at(self, level: int) -> LevelCrop | None:
        return next((c for c in self.crops if c.level == level), None)


def level_sizes(
    dlib: Any, height: int, width: int, layout: DetectorLayout
) -> list[tuple[int, int]]:
    """The (h, w) of every level dlib scans for an image of this size: it counts levels
    by shrinking the image rectangle with `rect_down` until a side is under the minimum."""
    pyr = dlib.pyramid_down(6)
    rect = dlib.rectangle(0, 0, width - 1, height - 1)
    count = 0
    while True:
        rect = pyr.rect_down(rect)
        count += 1
        if not (
            rect.width() >= layout.min_layer[0]
            and rect.height() >= layout.min_layer[1]
            and count < layout.max_levels
        ):
            break
    sizes = [(height, width)]
    for _ in range(count - 1):
        sizes.append(pyramid_step(*sizes[-1]).out_size)
    return sizes


def plan_levels(
    sizes: list[tuple[int, int]], area: np.ndarray, face: np.ndarray, spread: int
) -> RegionLevels | None:
    """The crops that search `area` (x1, y1, x2, y2, level-0 pixels) for the face
    predicted at box `face`: the levels within `spread` of the one whose boxes are that
    wide. None when no such level exists (a face too small or too large for the pyramid)."""
    height, width = sizes[0]
    face_side = float(max(face[2] - face[0], face[3] - face[1]))
    centre = np.log(max(face_side, 1.0) / LEVEL0_SIDE) / np.log(RATE)
    wanted = [j for j in range(round(centre) - spread, round(centre) + spread + 1)]
    levels = [j for j in wanted if 0 <= j < len(sizes)]
    if not levels:
        return None
    crops = []
    for j in levels:
        h, w = sizes[j]
        sy, sx = h / height, w / width
        x0 = max(0, int(np.floor((area[0] * sx - GUARD) / CELL)) * CELL)
        y0 = max(0, int(np.floor((area[1] * sy - GUARD) / CELL)) * CELL)
        x1 = min(w, int(np.ceil(area[2] * sx + GUARD)) + 1)
        y1 = min(h, int(np.ceil(area[3] * sy + GUARD)) + 1)
        if x1 - x0 <= 2 * GUARD or y1 - y0 <= 2 * GUARD:
            continue
        crops.append(LevelCrop(j, (y0, y1, x0, x1), (y0 > 0, y1 < h, x0 > 0, x1 < w)))
    if not crops:
        return None
    top = crops[-1].level
    needed: list[tuple[int, int, int, int] | None] = [None] * (top + 1)
    by_level = {c.level: c.rect for c in crops}
    for j in range(top, -1, -1):
        rect = by_level.get(j)
        if j < top:
            below = needed[j + 1]
            assert below is not None
            src = pyramid_step(*sizes[j]).source((below[0], below[1]), (below[2], below[3]))
            rect = src if rect is None else _union(rect, src)
        needed[j] = rect
    box = (float(face[0]), float(face[1]), float(face[2]), float(face[3]))
    return RegionLevels(tuple(crops), tuple(r for r in needed if r is not None), box, round(centre))


def _union(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


@dataclass(frozen=True)
class Candidate:
    """A box one level found for region `region`, mapped to level 0: (left, top, right,
    bottom) inclusive."""

    score: float
    rect: tuple[int, int, int, int]
    level: int
    region: int


def region_levels(
    plan: RegionLevels, base: np.ndarray, sizes: list[tuple[int, int]]
) -> list[np.ndarray]:
    """Each level's pixels of `plan.needed` as (3, h, w) planes, from level 0's pixels
    of `plan.needed[0]`."""
    planes = [to_planes(base)]
    for j in range(1, len(plan.needed)):
        prev, rect = plan.needed[j - 1], plan.needed[j]
        step = pyramid_step(*sizes[j - 1])
        planes.append(
            step.apply(planes[-1], (prev[0], prev[2]), (rect[0], rect[1]), (rect[2], rect[3]))
        )
    return planes


def scan_level(
    dlib: Any,
    one_level: Any,
    crop: LevelCrop,
    pixels: np.ndarray,
    threshold: float,
    region: int,
) -> tuple[list[Candidate], list[Candidate]]:
    """The boxes `pixels` (level `crop.level`'s pixels of `crop.rect`) hold, mapped to
    level 0: those a full-frame scan finds the same, away from cut edges, and those
    within `GUARD` of one (whose score the cut may have changed)."""
    rects, scores, _ = one_level.run(np.ascontiguousarray(pixels), 0, threshold)
    y0, y1, x0, x1 = crop.rect
    cut_top, cut_bottom, cut_left, cut_right = crop.cut
    h, w = y1 - y0, x1 - x0
    pyr = dlib.pyramid_down(6)
    inside: list[Candidate] = []
    edge: list[Candidate] = []
    for r, score in zip(rects, scores, strict=True):
        near_cut = (
            (cut_left and r.left() < GUARD)
            or (cut_top and r.top() < GUARD)
            or (cut_right and r.right() > w - 1 - GUARD)
            or (cut_bottom and r.bottom() > h - 1 - GUARD)
        )
        rect = dlib.rectangle(r.left() + x0, r.top() + y0, r.right() + x0, r.bottom() + y0)
        up = pyr.rect_up(rect, crop.level) if crop.level else rect
        box = (int(up.left()), int(up.top()), int(up.right()), int(up.bottom()))
        (edge if near_cut else inside).append(Candidate(float(score), box, crop.level, region))
    return inside, edge


def suppress(candidates: list[Candidate], layout: DetectorLayout) -> list[Candidate]:
    """dlib's non-max suppression: best score first, dropping boxes that overlap a kept
    one (the same box found from two regions is one box)."""
    kept: list[Candidate] = []
    for cand in sorted(candidates, key=lambda c: -c.score):
        if any(boxes_overlap(cand.rect, k.rect, layout.iou, layout.covered) for k in kept):
            continue
        kept.append(cand)
    return kept


# -- the search ------------------------------------------------------------------------------

# How much slower the numpy pyramid is than dlib's own per output pixel (measured on the
# 2-core machine: a 1066x600 level in 28-55 ms against 3-7 ms); a frame's regions get
# their own pyramids while these cost less than dlib's pyramid of the whole frame.
NUMPY_PYRAMID_COST = 8.0


@dataclass(frozen=True)
class SearchPlan:
    """The search of a frame's regions: the levels of an (h, w) image (`sizes`), each
    region's crops, and whether the levels come from dlib's pyramid of the whole image
    (`whole`) or from each region's own (bit-exact) part of it."""

    sizes: tuple[tuple[int, int], ...]
    regions: tuple[RegionLevels, ...]
    whole: bool

    @property
    def footprints(self) -> list[tuple[int, int, int, int]]:
        """(y0, y1, x0, x1) of the image each region's search reads."""
        if self.whole:
            h, w = self.sizes[0]
            return [(0, h, 0, w)]
        return [r.needed[0] for r in self.regions]


class RegionSearch:
    """Region search for one dlib HOG detector (see module doc); not thread-safe, as the
    detector. Raises ValueError when the detector's serialized layout is not the one
    read here."""

    def __init__(self, dlib: Any, detector: Any, spread: int = 2) -> None:
        self.dlib = dlib
        self.one_level, self.layout = one_level_detector(dlib, detector)
        self.own_pyramids = pyramid_matches_dlib(dlib)
        self.spread = spread

    def plan(
        self, size: tuple[int, int], regions: Sequence[tuple[np.ndarray, np.ndarray]]
    ) -> SearchPlan | None:
        """The search of (area, predicted face box) regions of an (h, w) image; None when
        a region has no level to search."""
        sizes = level_sizes(self.dlib, size[0], size[1], self.layout)
        planned = []
        for area, face in regions:
            levels = plan_levels(sizes, area, face, self.spread)
            if levels is None:
                return None
            planned.append(levels)
        top = max(r.crops[-1].level for r in planned)
        whole_px = sum(h * w for h, w in sizes[1 : top + 1])
        own_px = sum((r[1] - r[0]) * (r[3] - r[2]) for p in planned for r in p.needed[1:])
        whole = not self.own_pyramids or NUMPY_PYRAMID_COST * own_px >= whole_px
        return SearchPlan(tuple(sizes), tuple(planned), whole)

    def search(
        self, plan: SearchPlan, images: Sequence[np.ndarray], threshold: float
    ) -> list[Candidate] | None:
        """The boxes of a full-frame scan inside the planned regions, merged by dlib's
        non-max suppression; `images` hold the pixels of `plan.footprints`. Each region
        is scanned on the level of its face's size and the two beside it, then one level
        further wherever its best box is on an outer one, so that box is flanked by
        scanned levels; None when the answer may differ from a full-frame scan's (see
        `trusted`)."""
        pixels = self._level_pixels(plan, images)
        scanned: list[set[int]] = [set() for _ in plan.regions]
        inside: list[Candidate] = []
        edge: list[Candidate] = []

        def scan(i: int, crop: LevelCrop) -> None:
            found, near = scan_level(self.dlib, self.one_level, crop, pixels(i, crop), threshold, i)
            inside.extend(found)
            edge.extend(near)
            scanned[i].add(crop.level)

        for i, region in enumerate(plan.regions):
            for crop in region.crops:
                if abs(crop.level - region.centre) <= 1:
                    scan(i, crop)
        while True:
            kept = suppress(inside, self.layout)
            more = False
            for i, region in enumerate(plan.regions):
                best = self._best(region, kept)
                for level in () if best is None else (best.level - 1, best.level + 1):
                    beside = region.crop_at(level)
                    if beside is not None and level not in scanned[i]:
                        scan(i, beside)
                        more = True
            if not more:
                break
        return kept if self.trusted(plan, kept, edge, scanned) else None

    def _level_pixels(self, plan: SearchPlan, images: Sequence[np.ndarray]) -> Any:
        """(region, crop) -> the crop's pixels, from dlib's pyramid of the whole image or
        from each region's own part of it."""
        if plan.whole:
            top = max(r.crops[-1].level for r in plan.regions)
            levels = [np.ascontiguousarray(images[0])]
            pyr = self.dlib.pyramid_down(6)
            for _ in range(top):
                levels.append(np.asarray(pyr(levels[-1])))

            def whole(i: int, crop: LevelCrop) -> np.ndarray:
                y0, y1, x0, x1 = crop.rect
                return levels[crop.level][y0:y1, x0:x1]

            return whole
        own = [
            region_levels(region, base, list(plan.sizes))
            for region, base in zip(plan.regions, images, strict=True)
        ]

        def part(i: int, crop: LevelCrop) -> np.ndarray:
            y0, y1, x0, x1 = crop.rect
            have = plan.regions[i].needed[crop.level]
            planes = own[i][crop.level]
            return from_planes(planes[:, y0 - have[0] : y1 - have[0], x0 - have[2] : x1 - have[2]])

        return part

    @staticmethod
    def _best(region: RegionLevels, kept: list[Candidate]) -> Candidate | None:
        """The best kept box on the region's predicted face (as `detection_budget.explains`)."""
        if not kept:
            return None
        iou = box_iou(np.array([c.rect for c in kept], np.float64), np.array(region.face))[:, 0]
        own = [c for c, v in zip(kept, iou, strict=True) if v >= FOUND_IOU]
        return own[0] if own else None

    def trusted(
        self,
        plan: SearchPlan,
        kept: list[Candidate],
        edge: list[Candidate],
        scanned: list[set[int]],
    ) -> bool:
        """Whether the kept boxes are those of a full-frame scan as far as the search can
        tell: no box near a cut edge outscores a kept box it overlaps (the full frame may
        hold a better one there), and each region's best box lies on a level whose both
        neighbours were scanned (or are past the pyramid's ends)."""
        iou, covered = self.layout.iou, self.layout.covered
        for cand in kept:
            if any(
                e.score > cand.score and boxes_overlap(cand.rect, e.rect, iou, covered)
                for e in edge
            ):
                return False
        last = len(plan.sizes) - 1
        for region, done in zip(plan.regions, scanned, strict=True):
            best = self._best(region, kept)
            if best is None:
                continue  # nothing found: the caller looks at the whole frame
            for level in (best.level - 1, best.level + 1):
                if 0 <= level <= last and level not in done:
                    return False
        return True
