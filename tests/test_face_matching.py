"""Matching: each reference's source goes to the right face, even when people swap places."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from face_tiles import tile

from ghost_engine.errors import InputFileNotFoundError, NoFaceError, UnsupportedMediaError
from ghost_engine.face.photos import read_photo
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.pipeline.swap import build_swap_stage
from ghost_engine.types import Frame

CONFIG = SwapConfig(generator="passthrough", detector="dlib", recognizer="dlib", smoothing="none")


@pytest.mark.slow
def test_sources_follow_people_who_swap_places(media):
    elon = tile(read_photo(media / "faces" / "elon_musk.jpg"), 300)
    mark = tile(read_photo(media / "faces" / "mark.jpg"), 300)
    frames = []
    for i in range(6):
        left, right = (elon, mark) if i < 3 else (mark, elon)
        canvas = np.zeros((340, 640, 3), np.uint8)
        dx = 4 * i
        canvas[20:320, 10 + dx : 310 + dx] = left
        canvas[20:320, 330 - dx // 2 : 630 - dx // 2] = right
        frames.append(Frame(i, canvas))
    stage = build_swap_stage(
        CONFIG,
        sources=[[media / "faces" / "beckham.jpg"], [media / "faces" / "murakami.jpg"]],
        target_faces=[media / "faces" / "elon_musk.jpg", media / "faces" / "mark.jpg"],
    )
    out = stage.process(frames[:2]) + stage.process(frames[2:5]) + stage.process(frames[5:])
    out += stage.flush()
    assert [f.index for f in out] == list(range(6))
    for frame in out:
        faces = frame.meta["faces"]
        assert len(faces) == 2 and frame.meta["faces_swapped"] == 2
        by_side = {
            ("left" if (f["box"][0] + f["box"][2]) / 2 < 320 else "right"): f["source"]
            for f in faces
        }
        elon_side = "left" if frame.index < 3 else "right"
        mark_side = "right" if elon_side == "left" else "left"
        assert by_side == {elon_side: 0, mark_side: 1}, (frame.index, by_side)


def test_photo_errors_name_the_file(tmp_path, media):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))
    with pytest.raises(NoFaceError, match="blank.png"):
        build_swap_stage(CONFIG, [[blank]])
    with pytest.raises(InputFileNotFoundError, match="missing.jpg"):
        build_swap_stage(CONFIG, [[tmp_path / "missing.jpg"]])
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    with pytest.raises(UnsupportedMediaError, match="junk.jpg"):
        build_swap_stage(CONFIG, [[junk]])
