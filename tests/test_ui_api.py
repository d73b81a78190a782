"""The API behind `ghost-engine ui` (people, preview, controlled runs) and the UI's own
logic without a browser, on real media with the offline dlib models."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from ghost_engine import api
from ghost_engine.errors import NoFaceError, RunInterrupted, UnsupportedMediaError, UserInputError
from ghost_engine.face.dlib_backend import DlibDetector
from ghost_engine.pipeline.swap import make_config

OFFLINE = {"generator": "passthrough", "detector": "dlib", "recognizer": "dlib"}


@pytest.fixture(scope="module")
def config():
    return make_config(**OFFLINE)


def _two_people(media: Path, folder: Path) -> tuple[Path, int]:
    """beckham.jpg and murakami.jpg side by side; the x where the second begins."""
    left = cv2.imread(str(media / "faces" / "beckham.jpg"))
    right = cv2.imread(str(media / "faces" / "murakami.jpg"))
    height = max(left.shape[0], right.shape[0])

    def pad(image: np.ndarray) -> np.ndarray:
        return np.pad(image, ((0, height - image.shape[0]), (0, 0), (0, 0)))

    path = folder / "two.png"
    cv2.imwrite(str(path), np.hstack([pad(left), pad(right)]))
    return path, left.shape[1]


def test_find_people_tells_two_people_apart_and_thumbnails_find_them_again(
    media, tmp_path, config
) -> None:
    target, split = _two_people(media, tmp_path)
    people = api.find_people(target, config=config)
    assert len(people) == 2
    sides = sorted((p.box[0] >= split, p.box[2] >= split) for p in people)
    assert sides == [(False, False), (True, True)]  # one face wholly in each half
    detector = DlibDetector()
    for person in people:
        assert person.thumbnail.dtype == np.uint8 and min(person.thumbnail.shape[:2]) >= 256
        assert len(detector([person.thumbnail])[0]) == 1  # usable as a -t reference


def test_find_people_in_a_clip_is_one_person_seen_in_every_sample(media, config) -> None:
    people = api.find_people(media / "videos" / "dance.mp4", config=config, sample_frames=6)
    assert len(people) == 1
    assert people[0].frames_seen == 6
    assert people[0].frame_index % 11 == 0  # 66 frames sampled every 11th


def test_find_people_refuses_what_is_not_media(tmp_path, config) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n")
    with pytest.raises(UnsupportedMediaError):
        api.find_people(fake, config=config)
    with pytest.raises(UserInputError, match="sample_frames"):
        api.find_people(fake, config=config, sample_frames=0)


def _decoded_frame(path: Path, index: int) -> np.ndarray:
    """Frame `index` counted by a plain sequential PyAV decode, in the engine's one
    YUV->RGB conversion (proven against the standard formulas in
    test_colour_conversion.py); PyAV's own rgb24 is checked close to it, so the count
    is PyAV's and the pixels are the engine's."""
    from ghost_engine.video.reader import read_frames

    with av.open(str(path)) as container:
        plain = next(
            f.to_ndarray(format="rgb24")
            for i, f in enumerate(container.decode(video=0))
            if i == index
        )
    frame = next(f for f in read_frames(path) if f.index == index)
    assert np.abs(frame.image.astype(int) - plain).mean() < 2.0
    return frame.image


def test_preview_frame_is_the_frame_at_that_time_before_and_after(media, config) -> None:
    clip = media / "videos" / "dance.mp4"
    ref = api.find_people(clip, config=config, sample_frames=1)[0]
    shot = api.preview_frame(clip, [media / "faces" / "mark.jpg"], config=config, time_s=1.0)
    assert shot.frame_index == 25  # 25 fps
    assert shot.time_s == pytest.approx(1.0, abs=1 / 25)
    assert np.array_equal(shot.before, _decoded_frame(clip, 25))
    assert shot.faces_swapped == 1
    changed = np.any(shot.before != shot.after, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.any()
    # passthrough pastes the face back: only pixels near the face may change
    x1, y1, x2, y2 = ref.box
    margin = x2 - x1
    assert xs.min() >= x1 - margin and xs.max() <= x2 + margin
    assert ys.min() >= y1 - margin and ys.max() <= y2 + margin
    with pytest.raises(UserInputError, match="no frame at 60"):
        api.preview_frame(clip, [media / "faces" / "mark.jpg"], config=config, time_s=60.0)


def test_swap_controlled_reports_every_frame_and_cancel_writes_nothing(
    media, tmp_path, config
) -> None:
    clip = media / "videos" / "dance.mp4"
    seen: list[tuple[int, int]] = []
    control = api.RunControl(on_progress=lambda done, total: seen.append((done, total)))
    out = tmp_path / "out.mp4"
    report = api.swap_controlled(
        clip, [media / "faces" / "mark.jpg"], out, control=control, config=config
    )
    assert report.frames == 66 and out.is_file()
    assert seen[-1] == (66, 66)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)

    stopper = api.RunControl()
    stopper.on_progress = lambda done, total: stopper.cancel()
    cancelled = tmp_path / "cancelled.mp4"
    with pytest.raises(RunInterrupted, match="cancelled"):
        api.swap_controlled(
            clip, [media / "faces" / "mark.jpg"], cancelled, control=stopper, config=config
        )
    assert not cancelled.exists()


def test_swap_controlled_checks_inputs_before_any_model(tmp_path, config) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n")
    with pytest.raises(UnsupportedMediaError):
        api.swap_controlled(
            fake, [fake], tmp_path / "o.mp4", control=api.RunControl(), config=config
        )
    with pytest.raises(NoFaceError):
        blank = tmp_path / "blank.png"
        cv2.imwrite(str(blank), np.zeros((64, 64, 3), np.uint8))
        api.swap_controlled(
            blank, [blank], tmp_path / "o.png", control=api.RunControl(), config=config
        )
