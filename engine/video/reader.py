"""Decode a video into `Frame`s one at a time (never the whole clip in memory).

Frames keep the input's timestamps (so variable frame rate survives), come upright
(rotation metadata applied) and can be limited to a time range.

Colours: YUV frames are turned into RGB by the engine's one conversion
(`kernels.colour.yuv_to_rgb`, which the NVDEC path runs on the GPU), reading the stream's
matrix and range from the frame and the chroma siting from the codec (`yuv_format`).
Formats it does not take (RGB, packed YUV, palettes, grey, matrices other than BT.601,
BT.709, BT.2020 and SMPTE 240M) are converted by FFmpeg's swscale instead.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from ghost_engine.errors import UnsupportedMediaError, UserInputError, one_line
from ghost_engine.kernels import colour
from ghost_engine.types import Frame
from ghost_engine.video.media import open_input
from ghost_engine.video.pixels import check_pixels


@dataclass(frozen=True)
class VideoInfo:
    """What the run needs to know about the input video before decoding it."""

    path: Path
    width: int  # upright, after rotation
    height: int
    rotation: int  # degrees counter-clockwise applied to decoded frames
    time_base: Fraction
    rate: Fraction  # average frame rate, for the encoder's rate control only
    frame_count: int  # as the container states it; 0 when unknown
    duration_s: float | None
    start_s: float  # timestamp of the stream's first frame
    codec: str
    audio_streams: int
    subtitle_streams: int
    # the video stream's own duration (not the container's, which other streams may
    # lengthen); None when the file does not say; for telling a file that ends early
    stream_duration_s: float | None = None


def probe_video(path: Path, max_pixels: int | None = None, what: str = "target") -> VideoInfo:
    """Read the stream header (and first frame, for rotation) of a video file.

    With `max_pixels`, a frame size above it is refused from the header, before the
    first frame is decoded (`pixels.check_pixels`; `what` names the file there).
    """
    with open_input(path) as container:
        stream = _video_stream(container, path)
        width, height = stream.codec_context.width, stream.codec_context.height
        if max_pixels is not None:
            check_pixels(width, height, max_pixels, Path(path), what)
        rotation = 0
        try:
            for frame in container.decode(stream):
                rotation = _quarter_turns(frame) * 90
                break
            else:
                raise UnsupportedMediaError(
                    f"{one_line(str(path))} has a video stream but no decodable frames",
                    path=path,
                )
        except av.error.FFmpegError as exc:
            raise UnsupportedMediaError(
                f"{one_line(str(path))} has a video stream but its first frame cannot be "
                f"decoded ({exc.strerror or exc}); the file may be damaged",
                path=path,
            ) from exc
        if rotation % 180:
            width, height = height, width
        tb = stream.time_base or Fraction(1, 90000)
        duration = _stream_duration(stream, tb)
        if duration is None and container.duration is not None:
            duration = container.duration / av.time_base
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        return VideoInfo(
            path=Path(path),
            width=width,
            height=height,
            rotation=rotation,
            time_base=Fraction(tb),
            rate=Fraction(rate),
            frame_count=int(stream.frames or 0),
            duration_s=duration,
            start_s=float(stream.start_time * tb) if stream.start_time is not None else 0.0,
            codec=stream.codec_context.name,
            audio_streams=len(container.streams.audio),
            subtitle_streams=len(container.streams.subtitles),
            stream_duration_s=_stream_duration(stream, tb)
            if len(container.streams) > 1
            else duration,
        )


def _stream_duration(stream: av.VideoStream, tb: Fraction) -> float | None:
    """The video stream's own duration: its header's, or the DURATION tag Matroska files
    written by FFmpeg carry per stream; None when neither is there."""
    if stream.duration is not None:
        return float(stream.duration * tb)
    tag = stream.metadata.get("DURATION")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            return None
    return None


def read_frames(
    path: Path,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    first_index: int = 0,
) -> Generator[Frame, None, None]:
    """Yield upright RGB frames with `start_s <= time < end_s`, numbered from `first_index`.

    Seeks to the keyframe before `start_s` and drops the frames before it, so starting
    late in a long file costs one GOP of decoding, not the whole prefix.
    """
    with open_input(path) as container:
        stream = _video_stream(container, path)
        stream.thread_type = "AUTO"
        tb = stream.time_base or Fraction(1, 90000)
        step = _frame_step(stream, tb)
        if start_s:
            container.seek(int(start_s / tb), stream=stream, backward=True, any_frame=False)
        index = first_index
        last_pts: int | None = None
        codec = stream.codec_context.name
        for vf in container.decode(stream):
            if vf.pts is not None:
                pts = vf.pts
            else:
                pts = 0 if last_pts is None else last_pts + step
            last_pts = pts
            t = float(pts * tb)
            if start_s is not None and t < start_s - 1e-6:
                continue
            if end_s is not None and t >= end_s - 1e-6:
                break
            yield Frame(index=index, image=_upright_rgb(vf, codec), pts=pts, time_base=Fraction(tb))
            index += 1


def count_frames(path: Path, start_s: float, end_s: float) -> int:
    """Frames with `start_s <= time < end_s`, counted from packets (no decoding)."""
    with open_input(path) as container:
        stream = _video_stream(container, path)
        tb = stream.time_base or Fraction(1, 90000)
        container.seek(int(start_s / tb), stream=stream, backward=True, any_frame=False)
        count = 0
        for packet in container.demux(stream):
            if packet.pts is not None and start_s - 1e-6 <= packet.pts * tb < end_s - 1e-6:
                count += 1
        return count


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    if not container.streams.video:
        kinds = ", ".join(s.type for s in container.streams) or "none"
        raise UnsupportedMediaError(f"{path} has no video stream (streams: {kinds})", path=path)
    return container.streams.video[0]


def _frame_step(stream: av.VideoStream, tb: Fraction) -> int:
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    return max(1, round(1 / (Fraction(rate) * tb)))


def _quarter_turns(vf: av.VideoFrame) -> int:
    """Counter-clockwise quarter turns from the display matrix (0 when there is none)."""
    rotation = getattr(vf, "rotation", 0) or 0
    return int(round(rotation / 90.0)) % 4


def _upright_rgb(vf: av.VideoFrame, codec: str) -> np.ndarray:
    image = frame_rgb(vf, codec)
    turns = _quarter_turns(vf)
    if turns:
        image = np.ascontiguousarray(np.rot90(image, k=turns))
    return image


# pix_fmt -> bits per sample of the planar YUV formats the one conversion reads directly
PLANAR_YUV = {
    **{f"yuv{s}p": 8 for s in ("420", "422", "444", "440")},
    **{f"yuvj{s}p": 8 for s in ("420", "422", "444", "440")},
    **{f"yuv{s}p{b}le": b for s in ("420", "422", "444") for b in (10, 12)},
}
INTERLEAVED_YUV = {"nv12": 8}  # luma plane, then U, V interleaved at half resolution
# FFmpeg's AVColorSpace numbers -> matrix; 2 (unspecified) reads as BT.601, as swscale
# does, and as our encoders write (swscale's RGB -> YUV, `kernels.color.rgb_to_i420`)
MATRICES: dict[int, colour.Matrix] = {
    1: "bt709",
    2: "bt601",
    5: "bt601",
    6: "bt601",
    7: "smpte240m",
    9: "bt2020",
    10: "bt2020",  # constant luminance, read as non-constant (a close approximation)
}
FULL_RANGE = 2  # AVCOL_RANGE_JPEG
# PyAV does not expose a frame's chroma location, so the siting is the codec's own
# default: left (MPEG-2's, which H.264, HEVC, AV1 and the MPEG-4 family keep) for these,
# centred (JPEG's) for the others (MJPEG, MPEG-1, VP8, VP9, ...). A stream that signals
# another siting is read with its codec's default.
LEFT_SITED_CODECS = frozenset({"h264", "hevc", "av1", "mpeg2video", "mpeg4", "vc1", "h263"})


@lru_cache(maxsize=64)
def _yuv_format(
    pix_fmt: str, colorspace: int, color_range: int, codec: str
) -> colour.YuvFormat | None:
    bits = PLANAR_YUV.get(pix_fmt) or INTERLEAVED_YUV.get(pix_fmt)
    matrix = MATRICES.get(colorspace)
    if bits is None or matrix is None:
        return None
    return colour.YuvFormat(
        matrix=matrix,
        full_range=color_range == FULL_RANGE or pix_fmt.startswith("yuvj"),
        siting="left" if codec in LEFT_SITED_CODECS else "center",
        bits=bits,
    )


def yuv_format(vf: av.VideoFrame, codec: str) -> colour.YuvFormat | None:
    """How to read `vf`'s YUV samples (matrix, range, siting, depth) decoded by `codec`
    (PyAV's codec name); None when the one conversion does not take its format."""
    return _yuv_format(vf.format.name, int(vf.colorspace), int(vf.color_range), codec)


def yuv_planes(vf: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V views (no copy) of a frame in `PLANAR_YUV` or `INTERLEAVED_YUV`."""
    dtype = np.dtype("<u2") if PLANAR_YUV.get(vf.format.name, 8) > 8 else np.dtype(np.uint8)
    views = []
    for plane in vf.planes:
        rows = np.frombuffer(
            memoryview(plane), dtype, count=plane.height * plane.line_size // dtype.itemsize
        )
        views.append(rows.reshape(plane.height, -1))
    if vf.format.name in INTERLEAVED_YUV:
        luma, chroma = views
        pairs = chroma[:, : 2 * vf.planes[1].width]
        return luma[:, : vf.width], pairs[:, 0::2], pairs[:, 1::2]
    y, u, v = (view[:, : plane.width] for view, plane in zip(views, vf.planes, strict=True))
    return y, u, v


def frame_rgb(vf: av.VideoFrame, codec: str) -> np.ndarray:
    """RGB uint8 (H, W, 3) of a decoded frame (as stored; rotation is not applied)."""
    fmt = yuv_format(vf, codec)
    if fmt is None:
        image: np.ndarray = vf.to_ndarray(format="rgb24")
        return image
    return colour.yuv_to_rgb(*yuv_planes(vf), fmt)


def stream_format(path: Path) -> tuple[str, colour.YuvFormat | None]:
    """The first frame's pixel format and `yuv_format` (for decoders that give the raw
    samples, NVDEC); raises `UnsupportedMediaError` when no frame decodes."""
    with open_input(path) as container:
        stream = _video_stream(container, path)
        for vf in container.decode(stream):
            return vf.format.name, yuv_format(vf, stream.codec_context.name)
    raise UnsupportedMediaError(f"{one_line(str(path))} has no decodable frames", path=path)


def validate_range(start_s: float | None, end_s: float | None) -> None:
    """Reject non-finite, negative or empty time ranges before anything is opened."""
    for option, value, allowed in (("--start", start_s, ">= 0"), ("--end", end_s, "> 0")):
        if value is not None and not math.isfinite(value):
            raise UserInputError(
                f"{option} must be a finite number of seconds ({allowed}), got {value}",
                option=option,
                value=value,
            )
    if start_s is not None and start_s < 0:
        raise UserInputError(
            f"--start must be >= 0 seconds, got {start_s}", option="--start", value=start_s
        )
    if end_s is not None and end_s <= 0:
        raise UserInputError(f"--end must be > 0 seconds, got {end_s}", option="--end", value=end_s)
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise UserInputError(
            f"--end ({end_s}) must be after --start ({start_s})", option="--end", value=end_s
        )
