"""Camera input in its own thread: OpenCV devices and URLs, or a video file played live.

A file given as the camera is paced at its own frame rate (frame k leaves at the start
time plus its timestamp), as a real camera would deliver it, so a slow swap loop sees the
same drops it would see live. The capture thread puts every frame into a `LatestSlot`
and always closes it at the end (or on an error), so the loop never waits forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from ghost_engine.errors import InputFileNotFoundError, UserInputError, one_line
from ghost_engine.types import Frame
from ghost_engine.webcam.slot import LatestSlot, SlotClosed

Clock = Callable[[], float]
_log = logging.getLogger(__name__)


@dataclass
class Captured:
    """A camera frame (index = capture order from 0) and when it left the camera."""

    frame: Frame
    captured_s: float


class CameraSource(Protocol):
    """Blocking frame source: `read()` returns the next frame, None at the end."""

    description: str

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


def _resize(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    if size is None or (image.shape[1], image.shape[0]) == size:
        return image
    shrink = size[0] * size[1] < image.shape[0] * image.shape[1]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class FileCamera:
    """A video file delivered in real time at its own frame rate (optionally looped).

    `size` (width, height) resizes every frame, as a camera set to that resolution would.
    """

    def __init__(
        self,
        path: Path,
        *,
        size: tuple[int, int] | None = None,
        loop: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = time.perf_counter,
        max_pixels: int | None = None,
    ) -> None:
        from ghost_engine.video.reader import probe_video

        self.path = Path(path)
        if not self.path.is_file():
            raise InputFileNotFoundError(
                f"camera file not found: {one_line(str(self.path))}; check the path",
                path=self.path,
            )
        self.info = probe_video(self.path, max_pixels, what="camera file")
        self.description = f"file {self.path.name} at {float(self.info.rate):.3g} frames/s"
        self.size = size
        self.loop = loop
        self._sleep = sleep
        self._clock = clock
        self._frames = self._iterate()
        self._start: float | None = None
        self._index = 0

    def _iterate(self) -> Generator[tuple[Frame, float], None, None]:
        """(frame, seconds since the first frame), across loops of the file. A file that
        stops decoding ends the stream there, with a one-line warning (and no more loops:
        each would stop at the same place)."""
        from ghost_engine.video.damage import DecodeWatch
        from ghost_engine.video.reader import read_frames

        offset = 0.0
        period = 1.0 / float(self.info.rate)
        while True:
            first: float | None = None
            last = 0.0
            watch = DecodeWatch(read_frames(self.path), path=self.path)
            for frame in watch:
                t = frame.pts_seconds if frame.pts_seconds is not None else frame.index * period
                first = t if first is None else first
                last = t
                yield frame, offset + t - first
            if watch.error is not None:
                _log.warning("%s", watch.damage().message(self.path, "warn"))
                return
            if not self.loop or first is None or last is None:
                return
            offset += last - first + period

    def read(self) -> Frame | None:
        item = next(self._frames, None)
        if item is None:
            return None
        frame, at_s = item
        now = self._clock()
        if self._start is None:
            self._start = now
        wait = self._start + at_s - now
        if wait > 0:
            self._sleep(wait)
        out = Frame(
            index=self._index,
            image=_resize(frame.image, self.size),
            pts=round(at_s * 1_000_000),
            time_base=Fraction(1, 1_000_000),
        )
        self._index += 1
        return out

    def close(self) -> None:
        self._frames.close()


class OpenCVCamera:
    """A capture device (index) or stream URL through `cv2.VideoCapture`."""

    def __init__(
        self, spec: int | str, *, size: tuple[int, int] | None = None, fps: float | None = None
    ) -> None:
        self.description = f"camera {spec}"
        self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            self._cap.release()
            raise UserInputError(
                f"cannot open camera {spec!r}; check the device index or URL "
                "(is the camera connected and not in use by another program?)"
            )
        if size is not None:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, size[0])
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, size[1])
        if fps is not None:
            self._cap.set(cv2.CAP_PROP_FPS, fps)
        self.size = size
        self._index = 0

    def read(self) -> Frame | None:
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        frame = Frame(index=self._index, image=_resize(rgb, self.size))
        self._index += 1
        return frame

    def close(self) -> None:
        self._cap.release()


def camera_file(spec: str) -> Path | None:
    """The video file a `--camera` spec names; None for a device index or a stream URL."""
    text = str(spec).strip()
    if text.isdigit() or "://" in text:
        return None
    return Path(text)


def open_camera(
    spec: str,
    *,
    size: tuple[int, int] | None = None,
    fps: float | None = None,
    loop: bool = False,
    max_pixels: int | None = None,
) -> CameraSource:
    """`0`, `1`... (device index) or `scheme://...` (stream URL) through OpenCV; anything
    else is a video file played at its own rate (`fps` applies to devices only;
    `max_pixels` to files, whose frame size is known from the header)."""
    text = str(spec).strip()
    path = camera_file(text)
    if path is None:
        return OpenCVCamera(int(text) if text.isdigit() else text, size=size, fps=fps)
    return FileCamera(path, size=size, loop=loop, max_pixels=max_pixels)


class CaptureThread(threading.Thread):
    """Reads `source` until it ends or `stop()` is called; each frame goes into `slot`
    with its capture time. The slot is closed in every case; an error is kept in
    `error` for the loop to raise."""

    def __init__(self, source: CameraSource, slot: LatestSlot, clock: Clock) -> None:
        super().__init__(name="webcam-capture", daemon=True)
        self.source = source
        self.slot = slot
        self.clock = clock
        self.error: BaseException | None = None
        self._stop_event = threading.Event()

    def stop(self) -> None:
        self._stop_event.set()

    def run(self) -> None:
        try:
            while not self._stop_event.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                self.slot.put(Captured(frame, self.clock()))
        except SlotClosed:
            pass  # the loop closed the slot to stop us: a normal end
        except BaseException as exc:  # kept and raised by the loop's thread
            self.error = exc
        finally:
            self.slot.close()
            self.source.close()
