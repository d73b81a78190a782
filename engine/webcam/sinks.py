"""Where live frames go: a preview window, a virtual camera, a file, a network stream.

Every sink takes `write(frame, at_s)` (`at_s`: seconds since the first captured frame,
used as the timestamp in files and streams, so a recording plays in real time with the
drops as gaps) and `close()`. Optional pieces (an OpenCV build with GUI support,
`pyvirtualcam`) are checked when the sink is created, with a clear error.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2

from ghost_engine.choices import STREAM_FORMATS, WEBCAM_OUTPUTS
from ghost_engine.errors import OptionalDependencyError, OutputError, UserInputError, one_line
from ghost_engine.types import Frame
from ghost_engine.webcam.controls import KEY_HELP, LiveControls

if TYPE_CHECKING:  # the output libraries load with the first sink that needs them
    import pyvirtualcam
    from av.container import OutputContainer
    from av.video.stream import VideoStream

    from ghost_engine.video.encode import EncodeSettings, SegmentEncoder

TIME_BASE = Fraction(1, 1000)
# URL scheme -> FFmpeg muxer for stream outputs


class Sink(Protocol):
    def write(self, frame: Frame, at_s: float) -> None: ...

    def close(self) -> None: ...


class NullSink:
    """Discards frames (benchmarks)."""

    def write(self, frame: Frame, at_s: float) -> None:
        return None

    def close(self) -> None:
        return None


class WindowSink:
    """An OpenCV preview window; its keys change `controls` (see KEY_HELP)."""

    def __init__(self, controls: LiveControls, title: str = "ghost-engine webcam") -> None:
        self.controls = controls
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise OptionalDependencyError(
                "the preview window needs OpenCV with GUI support, but the installed build "
                "has none (opencv-python-headless). Install it with: pip uninstall -y "
                "opencv-python-headless && pip install opencv-python; or use --output "
                "FILE, virtual-camera or rtsp://..."
            ) from exc
        cv2.setWindowTitle(title, f"{title}   [{KEY_HELP}]")

    def write(self, frame: Frame, at_s: float) -> None:
        cv2.imshow(self.title, cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR))
        self.controls.handle_key(cv2.waitKey(1))
        if cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self.controls.update(quit=True)  # the user closed the window

    def close(self) -> None:
        cv2.destroyWindow(self.title)


class VirtualCameraSink:
    """A virtual webcam (OBS, v4l2loopback...) through `pyvirtualcam`, opened on the
    first frame (its size fixes the camera's)."""

    def __init__(self, fps: float) -> None:
        try:
            import pyvirtualcam
        except ImportError as exc:
            raise OptionalDependencyError(
                "--output virtual-camera needs the Python package 'pyvirtualcam' and a "
                "virtual camera driver (OBS Virtual Camera, or v4l2loopback on Linux). "
                "Install it with: pip install pyvirtualcam"
            ) from exc
        self._module = pyvirtualcam
        self.fps = fps
        self._cam: pyvirtualcam.Camera | None = None

    def write(self, frame: Frame, at_s: float) -> None:
        if self._cam is None:
            try:
                self._cam = self._module.Camera(
                    width=frame.width,
                    height=frame.height,
                    fps=self.fps,
                    fmt=self._module.PixelFormat.RGB,
                )
            except RuntimeError as exc:
                raise OutputError(f"cannot start the virtual camera: {exc}") from exc
        self._cam.send(frame.image)

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()


class _Clock:
    """Strictly increasing millisecond timestamps from capture times."""

    def __init__(self) -> None:
        self.last: int | None = None

    def pts(self, at_s: float) -> int:
        pts = round(at_s * 1000)
        if self.last is not None and pts <= self.last:
            pts = self.last + 1
        self.last = pts
        return pts


class FileSink:
    """H.264 (or another `EncodeSettings` codec) file through PyAV, written under a
    temporary name and renamed when closed, so a crash leaves no half file.

    It holds the output's lock from creation to `close`/`abort` (a second run on the
    same file is refused), replaces an existing file only with `overwrite`, and pads
    odd-sized frames where the encoder needs even sizes (`encode.plan_encode`).
    """

    def __init__(
        self,
        path: Path,
        fps: float,
        settings: EncodeSettings | None = None,
        *,
        overwrite: bool = False,
    ) -> None:
        from ghost_engine.video.encode import EncodeSettings
        from ghost_engine.video.lock import OutputLock
        from ghost_engine.video.mux import muxer_for
        from ghost_engine.video.output import (
            check_output_path,
            final_path,
            remove_stale_partials,
            temp_path_for,
        )
        from ghost_engine.video.paths import RunPaths, check_run_paths

        self.path = check_output_path(final_path(Path(path)))
        muxer_for(self.path)  # an unknown container fails before the camera starts
        self.overwrite = overwrite
        check_run_paths(RunPaths(self.path), overwrite=overwrite)
        self.temp = temp_path_for(self.path)
        self.settings = settings or EncodeSettings(codec="h264", preset="veryfast")
        self.settings.resolve()  # a bad codec fails before the camera starts
        self.fps = fps
        self._encoder: SegmentEncoder | None = None
        self._clock = _Clock()
        self._lock = OutputLock(self.path).acquire()
        remove_stale_partials(self.path)

    def write(self, frame: Frame, at_s: float) -> None:
        from ghost_engine.video.encode import SegmentEncoder, plan_encode
        from ghost_engine.video.mux import muxer_for

        if self._encoder is None:
            rate = Fraction(self.fps).limit_denominator(1001)
            width, height = plan_encode(
                self.settings,
                frame.width,
                frame.height,
                format_name=muxer_for(self.path),
                rate=rate,
            )
            self._encoder = SegmentEncoder(
                self.temp,
                format_name=None,
                settings=self.settings,
                width=width,
                height=height,
                time_base=TIME_BASE,
                rate=rate,
            )
        out = Frame(index=frame.index, image=frame.image, pts=self._clock.pts(at_s))
        self._encoder.encode(out)

    def close(self) -> None:
        from ghost_engine.video.output import commit, discard

        try:
            if self._encoder is None:
                discard(self.temp)
                raise OutputError(
                    f"no frame reached the output, so {one_line(str(self.path))} was not written",
                    path=self.path,
                )
            try:
                self._encoder.close()
                commit(self.temp, self.path, replace=self.overwrite)
            except BaseException:
                discard(self.temp)
                raise
        finally:
            self._lock.release()

    def abort(self) -> None:
        from ghost_engine.video.output import discard

        try:
            if self._encoder is not None:
                self._encoder.abort()
            discard(self.temp)
        finally:
            self._lock.release()


def stream_format(url: str) -> str:
    """The FFmpeg muxer for a stream URL, or a UserInputError naming the schemes."""
    scheme = url.split("://", 1)[0].lower()
    if scheme not in STREAM_FORMATS:
        raise UserInputError(
            f"cannot stream to {scheme}:// URLs; use one of "
            + ", ".join(f"{s}://" for s in STREAM_FORMATS)
        )
    return STREAM_FORMATS[scheme]


class StreamSink:
    """Low-latency H.264 (x264 ultrafast, zerolatency) to rtsp://, rtmp://, srt://, udp://
    through FFmpeg's muxers; connects on the first frame."""

    def __init__(self, url: str, fps: float) -> None:
        self.url = url
        self.format = stream_format(url)
        self.fps = fps
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._clock = _Clock()

    def _open(self, width: int, height: int) -> None:
        import av

        options = {"rtsp_transport": "tcp"} if self.format == "rtsp" else {}
        try:
            self._container = av.open(self.url, mode="w", format=self.format, options=options)
            stream = self._container.add_stream(
                "libx264",
                rate=Fraction(self.fps).limit_denominator(1001),
                options={"preset": "ultrafast", "tune": "zerolatency"},
            )
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputError(f"cannot open the stream {self.url}: {exc}") from exc
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        self._stream = stream

    def write(self, frame: Frame, at_s: float) -> None:
        import av

        if self._container is None:
            self._open(frame.width, frame.height)
        vf = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
        vf.pts = self._clock.pts(at_s)
        vf.time_base = TIME_BASE
        container, stream = self._container, self._stream
        assert container is not None and stream is not None  # `_open` raises or sets both
        try:
            container.mux(stream.encode(vf))
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputError(f"streaming to {self.url} failed: {exc}") from exc

    def close(self) -> None:
        if self._container is not None:
            if self._stream is not None:  # None when adding the stream failed
                self._container.mux(self._stream.encode(None))
            self._container.close()


def output_file(spec: str) -> Path | None:
    """The file an `--output` spec names; None for a window, camera, stream or `none`."""
    text = str(spec).strip()
    if text in WEBCAM_OUTPUTS or "://" in text:
        return None
    return Path(text)


def open_output(spec: str, *, fps: float, controls: LiveControls, overwrite: bool = False) -> Sink:
    """`window`, `virtual-camera`, `none`, a `scheme://` stream URL, or a file path (an
    existing file is replaced only with `overwrite`)."""
    text = str(spec).strip()
    if text == "window":
        return WindowSink(controls)
    if text == "virtual-camera":
        return VirtualCameraSink(fps)
    if text == "none":
        return NullSink()
    if "://" in text:
        return StreamSink(text, fps)
    return FileSink(Path(text), fps, overwrite=overwrite)
