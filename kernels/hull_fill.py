"""Convex-hull fill of a face mask, as `cv2.fillConvexPoly` rasterises it, as row spans.

A filled convex polygon is one run of pixels per row. `hull_row_spans` computes those
runs on the host (a few hundred integer steps: the hull is small data), replaying
OpenCV's scan conversion (8-connected edge lines plus rounded edge walking in 16.16
fixed point) so the device kernel only writes `lo <= x <= hi` per row and the result is
bit-exact with OpenCV. `fill_hull` is the CPU kernel and the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_XY_SHIFT = 16
_XY_ONE = 1 << _XY_SHIFT


def _c_div(a: int, b: int) -> int:
    """C integer division (truncates toward zero), as OpenCV's int64 maths does."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def convex_hull(points: np.ndarray) -> np.ndarray:
    """(K, 2) int64 hull vertices of integer points, in OpenCV's order."""
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 1:
        raise ValueError(f"points must be (K, 2), got {pts.shape}")
    return cv2.convexHull(pts.astype(np.int32)).reshape(-1, 2).astype(np.int64)


def _clip_line(w: int, h: int, p1: list[int], p2: list[int]) -> bool:
    x1, y1 = p1
    x2, y2 = p2
    right, bottom = w - 1, h - 1

    def code(x: int, y: int) -> int:
        return (x < 0) + (x > right) * 2 + (y < 0) * 4 + (y > bottom) * 8

    c1, c2 = code(x1, y1), code(x2, y2)
    if (c1 & c2) == 0 and (c1 | c2) != 0:
        if c1 & 12:
            a = 0 if c1 < 8 else bottom
            x1 += _c_div((a - y1) * (x2 - x1), y2 - y1)
            y1 = a
            c1 = (x1 < 0) + (x1 > right) * 2
        if c2 & 12:
            a = 0 if c2 < 8 else bottom
            x2 += _c_div((a - y2) * (x2 - x1), y2 - y1)
            y2 = a
            c2 = (x2 < 0) + (x2 > right) * 2
        if (c1 & c2) == 0 and (c1 | c2) != 0:
            if c1:
                a = 0 if c1 == 1 else right
                y1 += _c_div((a - x1) * (y2 - y1), x2 - x1)
                x1 = a
                c1 = 0
            if c2:
                a = 0 if c2 == 1 else right
                y2 += _c_div((a - x2) * (y2 - y1), x2 - x1)
                x2 = a
                c2 = 0
    p1[:] = [x1, y1]
    p2[:] = [x2, y2]
    return (c1 | c2) == 0


def _line(
    out: list[tuple[int, int]], w: int, h: int, a: tuple[int, int], b: tuple[int, int]
) -> None:
    """OpenCV's 8-connected LineIterator (left to right): appends the (x, y) it draws."""
    p1, p2 = [int(a[0]), int(a[1])], [int(b[0]), int(b[1])]
    outside = not (0 <= p1[0] < w and 0 <= p2[0] < w and 0 <= p1[1] < h and 0 <= p2[1] < h)
    if outside and not _clip_line(w, h, p1, p2):
        return
    dx, dy = p2[0] - p1[0], p2[1] - p1[1]
    if dx < 0:
        p1 = p2
        dx, dy = -dx, -dy
    step_x, step_y = 1, 1
    if dy < 0:
        dy, step_y = -dy, -1
    steep = dy > dx
    major, minor = (dy, dx) if steep else (dx, dy)
    err = major - 2 * minor
    x, y = p1
    for _ in range(major + 1):
        out.append((x, y))
        move_minor = err < 0
        err += -2 * minor + (2 * major if move_minor else 0)
        if steep:
            y += step_y
            x += step_x if move_minor else 0
        else:
            x += step_x
            y += step_y if move_minor else 0


def _scan(spans: np.ndarray, v: np.ndarray, w: int, h: int) -> None:
    """OpenCV's convex scan conversion (shift 0, 8-connected): one span per row."""
    npts = len(v)
    ymin_i = int(np.argmin(v[:, 1]))
    ymin, ymax = int(v[:, 1].min()), int(v[:, 1].max())
    if npts < 3 or v[:, 0].max() < 0 or ymax < 0 or v[:, 0].min() >= w or ymin >= h:
        return
    ymax = min(ymax, h - 1)
    idx_e, di_e = [ymin_i, ymin_i], [1, npts - 1]
    x_e, dx_e, ye_e = [-_XY_ONE, -_XY_ONE], [0, 0], [ymin, ymin]
    edges = npts
    y = ymin
    half = _XY_ONE >> 1
    while True:
        for i in range(2):
            if y >= ye_e[i]:
                idx0 = idx_e[i]
                idx = idx0 + di_e[i]
                if idx >= npts:
                    idx -= npts
                while edges > 0:
                    edges -= 1
                    ty = int(v[idx, 1])
                    if ty > y:
                        xs = int(v[idx0, 0]) << _XY_SHIFT
                        xe = int(v[idx, 0]) << _XY_SHIFT
                        ye_e[i] = ty
                        dx_e[i] = _c_div((xe - xs) * 2 + (ty - y), 2 * (ty - y))
                        x_e[i] = xs
                        idx_e[i] = idx
                        break
                    idx0 = idx
                    idx += di_e[i]
                    if idx >= npts:
                        idx -= npts
                else:
                    edges -= 1
        if edges < 0:
            break
        if y >= 0:
            left, right = (1, 0) if x_e[0] > x_e[1] else (0, 1)
            x1 = (x_e[left] + half) >> _XY_SHIFT
            x2 = (x_e[right] + half) >> _XY_SHIFT
            if x2 >= 0 and x1 < w:
                x1, x2 = max(x1, 0), min(x2, w - 1)
                spans[y, 0] = min(spans[y, 0], x1)
                spans[y, 1] = max(spans[y, 1], x2)
        x_e[0] += dx_e[0]
        x_e[1] += dx_e[1]
        y += 1
        if y > ymax:
            break


@dataclass(frozen=True)
class HullRaster:
    """A filled convex hull as OpenCV draws it: one span per row plus edge pixels.

    `spans` is (H, 2) int32 [lo, hi] per row (lo > hi: empty row); `edge_pixels` is
    (M, 2) int32 (x, y) of edge-line pixels outside those spans (they are disjoint from
    the span only where an edge was clipped at the image border).
    """

    spans: np.ndarray
    edge_pixels: np.ndarray


def hull_raster(points: np.ndarray, height: int, width: int) -> HullRaster:
    """The pixels `cv2.fillConvexPoly(mask, cv2.convexHull(points), v)` sets, as data.

    Computed on the host from the hull alone (small integer data) so a device kernel can
    fill a mask bit-exactly with OpenCV.
    """
    v = convex_hull(points)
    spans = np.empty((height, 2), np.int64)
    spans[:, 0] = width
    spans[:, 1] = -1
    drawn: list[tuple[int, int]] = []
    prev = v[-1]
    for p in v:
        _line(drawn, width, height, (int(prev[0]), int(prev[1])), (int(p[0]), int(p[1])))
        prev = p
    _scan(spans, v, width, height)
    extra = []
    for x, y in drawn:
        if x == spans[y, 0] - 1 and spans[y, 0] <= spans[y, 1]:
            spans[y, 0] = x
        elif x == spans[y, 1] + 1 and spans[y, 0] <= spans[y, 1]:
            spans[y, 1] = x
        elif spans[y, 0] > spans[y, 1] or not spans[y, 0] <= x <= spans[y, 1]:
            extra.append((x, y))
    edge = np.array(extra, np.int32).reshape(-1, 2)
    return HullRaster(spans.astype(np.int32), edge)


def fill_raster(raster: HullRaster, width: int, value: int = 255) -> np.ndarray:
    """uint8 (H, width) mask from a `HullRaster` (numpy; the device kernel does the same)."""
    spans = raster.spans
    cols = np.arange(width)[None, :]
    inside = (cols >= spans[:, :1]) & (cols <= spans[:, 1:])
    mask = np.where(inside, np.uint8(value), np.uint8(0))
    mask[raster.edge_pixels[:, 1], raster.edge_pixels[:, 0]] = value
    return mask


def fill_hull(points: np.ndarray, height: int, width: int, value: int = 255) -> np.ndarray:
    """uint8 (height, width) mask: the convex hull of integer points filled with `value`.

    The CPU kernel: OpenCV itself, as the official mask code calls it.
    """
    mask = np.zeros((height, width), np.uint8)
    cv2.fillConvexPoly(mask, convex_hull(points).astype(np.int32), int(value))
    return mask
