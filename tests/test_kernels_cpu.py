"""CPU image kernels against their references: PyAV, OpenCV and plain numpy.

Tolerances: NV12 (against `kernels.colour`) and hull fill are bit-exact; the others within
1/255 (one uint8 level).
"""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from ghost_engine.kernels import blend, blur, color, colour, hull_fill, letterbox, morphology, warp


def _video_frame(media, index: int = 30):
    with av.open(str(media / "videos" / "nggyup.mp4")) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame
    raise AssertionError("nggyup.mp4 has fewer frames than expected")


def _photo(media, name: str = "mark.jpg") -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(media / "faces" / name)), cv2.COLOR_BGR2RGB)


def test_nv12_is_the_one_conversion_read_as_bt601_limited(media):
    # The reference changed: NV12 -> RGB was swscale's own NV12 -> rgb24 (bit-exact), it is
    # now the one YUV -> RGB conversion (`kernels.colour`, tested against the standard
    # formulas in test_colour_conversion.py), which the CPU decode path uses too.
    nv12 = _video_frame(media).reformat(format="nv12").to_ndarray()
    for siting in ("left", "center"):
        fmt = colour.YuvFormat(matrix="bt601", full_range=False, siting=siting)
        got = color.nv12_to_rgb(nv12, chroma_siting=siting)
        assert got.shape == (720, 1280, 3)
        np.testing.assert_array_equal(got, colour.nv12_to_rgb(nv12, fmt))
    # the siting is a different picture: the option matters
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (48 * 3 // 2, 64), dtype=np.uint8)
    left = color.nv12_to_rgb(noise, chroma_siting="left").astype(int)
    assert np.abs(left - color.nv12_to_rgb(noise, chroma_siting="center")).max() > 5


def test_nv12_rejects_odd_layouts():
    with pytest.raises(ValueError, match="NV12"):
        color.nv12_to_rgb(np.zeros((10, 7), np.uint8))


def test_letterbox_matches_official_preprocessing(media):
    frame = _photo(media)  # 778 wide, 759 high
    blob, geo = letterbox.letterbox(np.stack([frame, frame[::-1].copy()]), 640)
    h, w = frame.shape[:2]
    # insightface: im_ratio = h / w; the longer side becomes 640
    if h / w > 1:
        assert (geo.new_height, geo.new_width) == (640, int(640 / (h / w)))
    else:
        assert (geo.new_width, geo.new_height) == (640, int(640 * h / w))
    assert geo.scale == pytest.approx(geo.new_height / h)
    canvas = np.zeros((640, 640, 3), np.uint8)
    canvas[: geo.new_height, : geo.new_width] = cv2.resize(frame, (geo.new_width, geo.new_height))
    expected = cv2.dnn.blobFromImage(canvas, 1.0 / 128, (640, 640), (127.5, 127.5, 127.5))
    assert blob.shape == (2, 3, 640, 640) and blob.dtype == np.float32
    assert np.abs(blob[:1] - expected).max() <= 1e-6
    assert blob[1, 0, 0, 0] != blob[0, 0, 0, 0]  # second frame really is the flipped one
    assert blob[0, :, 639, 639] == pytest.approx(-127.5 / 128)


def test_letterbox_resize_agrees_with_float_bilinear_within_one_level(media):
    frame = _photo(media)[:300, :400]
    blob, geo = letterbox.letterbox(frame, 256)
    h, w = frame.shape[:2]
    ys = (np.arange(geo.new_height) + 0.5) * h / geo.new_height - 0.5
    xs = (np.arange(geo.new_width) + 0.5) * w / geo.new_width - 0.5
    ys, xs = np.clip(ys, 0, h - 1), np.clip(xs, 0, w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    fy, fx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    f = frame.astype(np.float64)
    top = f[y0][:, x0] * (1 - fx) + f[y0][:, x1] * fx
    bot = f[y1][:, x0] * (1 - fx) + f[y1][:, x1] * fx
    ref = np.round(top * (1 - fy) + bot * fy)
    got = blob[0, :, : geo.new_height, : geo.new_width].transpose(1, 2, 0) * 128 + 127.5
    assert np.abs(got - ref).max() <= 1.0 + 1e-4


def test_warp_affine_batch_picks_frames_and_matches_opencv(media):
    a = _photo(media)
    b = cv2.resize(_photo(media, "beckham.jpg"), (a.shape[1], a.shape[0]))
    mats = np.array(
        [[[0.5, 0.1, -60.0], [-0.1, 0.5, -80.0]], [[0.4, 0.0, -20.0], [0.0, 0.4, -10.0]]]
    )
    crops = warp.warp_affine_batch(np.stack([a, b]), mats, 224, frame_index=[1, 0])
    assert crops.shape == (2, 224, 224, 3)
    assert np.array_equal(crops[0], cv2.warpAffine(b, mats[0], (224, 224), borderValue=0))
    assert np.array_equal(crops[1], cv2.warpAffine(a, mats[1], (224, 224), borderValue=0))
    with pytest.raises(ValueError, match="frame_index"):
        warp.warp_affine_batch(np.stack([a, b]), mats, 224, frame_index=[0, 2])


def test_hull_raster_is_bit_exact_with_opencv_fill():
    rng = np.random.default_rng(7)
    for _ in range(400):
        h, w = int(rng.integers(8, 64)), int(rng.integers(8, 64))
        n = int(rng.integers(3, 30))
        centre = rng.uniform([-10, -10], [w + 10, h + 10])  # some hulls cross the border
        pts = (centre + rng.normal(size=(n, 2)) * rng.uniform(2, 30)).astype(np.int32)
        raster = hull_fill.hull_raster(pts, h, w)
        assert np.array_equal(hull_fill.fill_raster(raster, w), hull_fill.fill_hull(pts, h, w))


def _min_max_reference(mask: np.ndarray, size: int) -> np.ndarray:
    before, after = morphology.window(size)
    pad_value = 255 if size > 0 else 0
    p = np.pad(mask, ((before, after), (before, after)), constant_values=pad_value)
    h, w = mask.shape
    stack = [
        p[dy : dy + h, dx : dx + w]
        for dy in range(before + after + 1)
        for dx in range(before + after + 1)
    ]
    return np.min(stack, axis=0) if size > 0 else np.max(stack, axis=0)


@pytest.mark.parametrize("size", [15, 10, 5, -5, 4])
def test_erode_dilate_matches_a_numpy_window(size):
    rng = np.random.default_rng(size + 20)
    mask = hull_fill.fill_hull(rng.integers(10, 60, (20, 2)), 64, 72)
    mask[rng.random(mask.shape) < 0.02] = 0
    got = morphology.erode_dilate(mask, size)
    assert np.array_equal(got, _min_max_reference(mask, size))


def test_zero_border_clears_exactly_the_edge():
    mask = np.full((20, 30), 200, np.uint8)
    out = morphology.zero_border(mask, 4)
    assert out[4:-4, 4:-4].min() == 200 and out.sum() == 200 * 12 * 22


@pytest.mark.parametrize(("sigma", "ksize"), [(5, 31), (8, 49), (10, 61), (15, 91), (1.2, 9)])
def test_gaussian_ksize_follows_opencv(sigma, ksize):
    assert blur.gaussian_ksize(sigma) == ksize
    assert blur.gaussian_taps(sigma).sum() == pytest.approx(1.0, abs=1e-5)


def test_gaussian_blur_matches_explicit_kernel_and_float_reference():
    rng = np.random.default_rng(5)
    mask = hull_fill.fill_hull(rng.integers(30, 190, (30, 2)), 224, 224)
    got = blur.gaussian_blur(mask, 10, 8)
    kx, ky = blur.gaussian_ksize(10), blur.gaussian_ksize(8)
    assert np.array_equal(got, cv2.GaussianBlur(mask, (kx, ky), 10, sigmaY=8))
    tx, ty = blur.gaussian_taps(10).astype(np.float64), blur.gaussian_taps(8).astype(np.float64)
    rows = np.stack(
        [[blur.reflect101(i + k - len(tx) // 2, 224) for k in range(len(tx))] for i in range(224)]
    )
    cols = np.stack(
        [[blur.reflect101(i + k - len(ty) // 2, 224) for k in range(len(ty))] for i in range(224)]
    )
    f = mask.astype(np.float64)
    tmp = (f[:, rows] * tx).sum(-1)
    ref = np.round((tmp[cols].transpose(0, 2, 1) * ty).sum(-1))
    assert np.abs(got.astype(int) - ref).max() <= 1


def test_blend_matches_official_full_frame_paste(media):
    frame = _photo(media)
    swap = cv2.cvtColor(cv2.imread(str(media / "aligned" / "source1.png")), cv2.COLOR_BGR2RGB)
    rng = np.random.default_rng(9)
    mask_u8 = blur.gaussian_blur(
        hull_fill.fill_hull(rng.integers(40, 184, (25, 2)), 224, 224), 5, 5
    )
    mask = mask_u8 / 255.0
    matrix = np.array([[0.55, 0.08, -150.0], [-0.08, 0.55, -90.0]])
    # the official get_final_image, on the whole frame
    inv = cv2.invertAffineTransform(matrix)
    size = (frame.shape[1], frame.shape[0])
    swap_t = cv2.warpAffine(swap, inv, size, borderMode=cv2.BORDER_REPLICATE)
    mask_t = cv2.warpAffine(mask, inv, size)[..., None]
    expected = np.array(mask_t * swap_t + (1 - mask_t) * frame, dtype="uint8")
    got = blend.blend_inverse_warp(frame.copy(), swap, mask_u8, matrix)
    assert np.abs(got.astype(int) - expected).max() <= 1
    assert (got != frame).any()
    x0, y0, x1, y1 = blend.paste_region(matrix, 224, *frame.shape[:2])
    outside = np.ones(frame.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(got[outside], frame[outside])
    assert (x1 - x0) * (y1 - y0) < frame.shape[0] * frame.shape[1] / 2
