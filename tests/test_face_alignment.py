"""Alignment to GHOST's 224 crop on real photos, and the geometry it rests on."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import transform

from ghost_engine.face.dlib_backend import DlibDetector
from ghost_engine.face.geometry import (
    TEMPLATES_112,
    align_face,
    estimate_norm,
    generator_input,
    mirror_template,
    templates,
    transform_points,
    umeyama,
)
from ghost_engine.face.photos import read_photo
from ghost_engine.face.recognizers import arcface_input


@pytest.fixture(scope="module")
def detector() -> DlibDetector:
    return DlibDetector()


def test_umeyama_matches_scikit_image():
    rng = np.random.default_rng(0)
    for _ in range(5):
        src = rng.uniform(0, 500, (5, 2))
        dst = TEMPLATES_112[rng.integers(5)] * 2
        ref = transform.SimilarityTransform.from_estimate(src, dst)
        np.testing.assert_allclose(umeyama(src, dst), ref.params[:2], atol=1e-9)


def test_estimate_norm_recovers_a_known_similarity():
    # Points made by a known similarity from the "right" template come back to it exactly.
    tpl = templates(224)[3]
    angle, scale, shift = 0.3, 0.7, np.array([40.0, -15.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    kps = tpl @ rot.T + shift
    matrix, index = estimate_norm(kps, 224)
    assert index == 3
    np.testing.assert_allclose(transform_points(kps, matrix), tpl, atol=1e-6)


def _half_bilinear_align_corners(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, C, H/2, W/2), bilinear with align_corners=True from its
    definition: output pixel i samples input position i * (S - 1) / (S/2 - 1) on each
    axis of size S, between the two pixels around it, weighted by the distance."""
    for axis in (2, 3):
        size = x.shape[axis]
        pos = np.arange(size // 2) * (size - 1) / (size // 2 - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, size - 1)
        shape = [1, 1, 1, 1]
        shape[axis] = len(pos)
        frac = (pos - lo).reshape(shape)
        x = np.take(x, lo, axis=axis) * (1 - frac) + np.take(x, hi, axis=axis) * frac
    return x


def test_network_inputs_follow_ghost():
    crop = np.random.default_rng(1).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    x = generator_input(crop)
    assert x.shape == (2, 3, 256, 256) and x.dtype == np.float32
    assert -1.0 <= x.min() and x.max() <= 1.0
    ident = arcface_input(crop)
    assert ident.shape == (2, 3, 112, 112) and ident.dtype == torch.float32
    # GHOST's ArcFace input, in float64 numpy: [-1, 1], then halved (bilinear, corners
    # aligned). Tolerance 1e-4: PyTorch (like GHOST's own float32 call) computes the
    # sampling position i * 223/111 in float32, up to 1.9e-5 pixel off the exact one,
    # and neighbours differ by up to 2, so each axis may move a value by 3.8e-5
    # (measured 5.2e-5 in all; with float32 positions the numpy reference agrees within
    # 1.8e-7). Corners unaligned or a plain resize are off by tenths.
    normalised = (crop.transpose(0, 3, 1, 2).astype(np.float64) / 255 - 0.5) / 0.5
    ref = _half_bilinear_align_corners(normalised)
    np.testing.assert_allclose(ident.numpy(), ref, rtol=0, atol=1e-4)
    # align_corners=True: the first pixel is the input's (normalised in float32), exactly;
    # the other three corners are the input's within the same float32 position error
    first = (crop[:, 0, 0].astype(np.float32) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
    np.testing.assert_array_equal(ident.numpy()[:, :, 0, 0], first)
    for i, j in ((0, -1), (-1, 0), (-1, -1)):
        np.testing.assert_allclose(ident.numpy()[:, :, i, j], normalised[:, :, i, j], atol=1e-4)


def test_points_land_on_the_chosen_template(media, detector):
    photos = sorted((media / "faces").glob("*.jpg"))
    assert len(photos) == 4
    for photo in photos:
        image = read_photo(photo)
        faces = detector([image])[0]
        assert len(faces) == 1, photo.name
        crop = align_face(image, faces[0].kps)
        in_crop = transform_points(faces[0].kps, crop.matrix)
        err = np.linalg.norm(in_crop - templates(224)[crop.template], axis=1)
        # Within 8 px for the frontal faces. The two slightly turned heads (beckham,
        # murakami) still fit the frontal template best, but their nose tip sits 10.9 /
        # 11.5 px beside it (and murakami's far eye 8.7 px): that is the pose, not a
        # landmark error (checked by eye), so they get 12 px.
        limit = 12.0 if photo.stem in ("beckham", "murakami") else 8.0
        assert err.max() < limit, (photo.name, err)
        # each point also lands on its own facial feature: the crop's eyes are above the
        # nose, which is above the mouth, and left is left
        assert in_crop[0, 0] < in_crop[1, 0] and in_crop[3, 0] < in_crop[4, 0]
        assert in_crop[:2, 1].max() < in_crop[2, 1] < in_crop[3:, 1].min()


def test_mirrored_photo_picks_the_mirrored_template(media, detector):
    for photo in sorted((media / "faces").glob("*.jpg")):
        image = read_photo(photo)
        mirrored = np.ascontiguousarray(image[:, ::-1])
        a = align_face(image, detector([image])[0][0].kps)
        b = align_face(mirrored, detector([mirrored])[0][0].kps)
        assert b.template == mirror_template(a.template), photo.name


def test_mirror_picks_mirror_on_synthetic_poses():
    # Every template, mirrored about the crop's centre line, is closest to its mirror.
    for i, tpl in enumerate(templates(224)):
        mirrored = tpl[[1, 0, 2, 4, 3]] * np.array([-1, 1]) + np.array([224, 0])
        assert estimate_norm(tpl, 224)[1] == i
        assert estimate_norm(mirrored, 224)[1] == mirror_template(i)
