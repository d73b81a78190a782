"""--debug-overlay: boxes, points and the mask outline land where they belong."""

from __future__ import annotations

import numpy as np

from ghost_engine.face.overlay import draw_overlay


def test_overlay_draws_box_points_and_mask_outline_in_frame_coordinates() -> None:
    image = np.zeros((400, 400, 3), np.uint8)
    mask = np.zeros((224, 224), np.float32)
    mask[50:150, 60:160] = 1.0  # a square in crop coordinates
    # crop = 0.5 * frame - (20, 10), so frame = 2 * crop + (40, 20): x 160..358, y 120..318
    matrix = np.array([[0.5, 0.0, -20.0], [0.0, 0.5, -10.0]])
    face = {"box": [10, 10, 60, 60], "score": 0.9, "kps": np.full((5, 2), 30.0), "track_id": 3}
    draw_overlay(image, [face], [{"mask": mask, "matrix": matrix}])

    yellow = np.all(image == (255, 255, 0), axis=2)
    ys, xs = np.nonzero(yellow)
    assert abs(xs.min() - 160) <= 2 and abs(xs.max() - 358) <= 2
    assert abs(ys.min() - 120) <= 2 and abs(ys.max() - 318) <= 2
    assert not yellow[200, 240]  # an outline, not a fill
    assert np.all(image[10, 10:60] == (0, 255, 0))  # box edge
    assert np.all(image[30, 30] == (255, 0, 0))  # a point
