"""Video encoder settings and one encoder writing one file (a segment of the output).

The codec names users type (`h264`, `hevc`...) map to FFmpeg encoders; options that an
encoder does not have are refused rather than silently ignored. `plan_encode` opens the
encoder once on a blank frame in memory before any decoding, so settings it refuses
(a preset, a pixel format, a size) fail at once with one line naming the setting.

Odd-sized videos: 4:2:0 and 4:2:2 encoders such as x264 need even sizes. Where the
encoder refuses the input's size, the frames are padded to the next size it takes by
repeating the last column and row (`padded_size`), and the run's report says so. The
alternative, cropping back in the container (MP4 `clap`, Matroska PixelCrop), is not
written by FFmpeg's muxers for every codec and many players ignore it, so padding is the
one behaviour that works for every codec and container.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np

from ghost_engine.choices import CODECS, ENCODER_PRESETS, check_choice
from ghost_engine.errors import OutputError, UserInputError, one_line
from ghost_engine.types import I420, Frame
from ghost_engine.video.media import ffmpeg_reason
from ghost_engine.video.output import translate_write_error

_log = logging.getLogger(__name__)

# user name (one of ghost_engine.choices.CODECS, in their order) -> (encoder, default
# pix_fmt, has CRF, has x264-style preset)
_CODECS: dict[str, tuple[str, str, bool, bool]] = {
    "h264": ("libx264", "yuv420p", True, True),
    "hevc": ("libx265", "yuv420p", True, True),
    "vp9": ("libvpx-vp9", "yuv420p", True, False),
    "av1": ("libsvtav1", "yuv420p", True, False),
    "prores": ("prores_ks", "yuv422p10le", False, False),
    "ffv1": ("ffv1", "bgr0", False, False),
}
_RGB_PIX_FMTS = {"rgb24", "bgr24", "bgr0"}


@dataclass(frozen=True)
class EncodeSettings:
    """How the output video is encoded. `crf=None` means 18 where the codec has CRF.

    `ffv1`, or `h264` with `crf=0` and `pix_fmt="rgb24"` (libx264rgb), are lossless.
    """

    codec: str = "h264"
    crf: int | None = None
    preset: str | None = None
    pix_fmt: str | None = None

    def resolve(self) -> tuple[str, str, dict[str, str]]:
        """(FFmpeg encoder, pixel format, encoder options), or a UserInputError."""
        message = f"unknown codec '{self.codec}'; choose one of {', '.join(CODECS)}"
        check_choice("--codec", self.codec, CODECS, message)
        encoder, default_fmt, has_crf, has_preset = _CODECS[self.codec]
        pix_fmt = self.pix_fmt or default_fmt
        if self.codec == "h264" and pix_fmt in _RGB_PIX_FMTS:
            encoder = "libx264rgb"
        if encoder not in av.codecs_available:
            raise UserInputError(
                f"this FFmpeg build has no '{encoder}' encoder for --codec {self.codec}; "
                "choose another codec",
                option="--codec",
                value=self.codec,
            )
        options: dict[str, str] = {}
        if self.crf is not None and not has_crf:
            raise UserInputError(
                f"--crf does not apply to --codec {self.codec} (no CRF mode)",
                option="--crf",
                value=self.crf,
            )
        if has_crf:
            crf = 18 if self.crf is None else self.crf
            if not 0 <= crf <= 63:
                raise UserInputError(
                    f"--crf must be between 0 and 63, got {crf}", option="--crf", value=crf
                )
            options["crf"] = str(crf)
            if self.codec == "vp9":
                options["b"] = "0"  # constant-quality mode
            if self.codec == "hevc" and crf == 0:
                options["x265-params"] = "lossless=1:log-level=error"
            elif self.codec == "hevc":
                options["x265-params"] = "log-level=error"
        if self.preset is not None:
            if not has_preset:
                raise UserInputError(
                    f"--preset applies to h264 and hevc only, not {self.codec}",
                    option="--preset",
                    value=self.preset,
                )
            message = (
                f"unknown --preset '{self.preset}'; choose one of {', '.join(ENCODER_PRESETS)}"
            )
            check_choice("--preset", self.preset, ENCODER_PRESETS, message)
            options["preset"] = self.preset
        try:
            av.VideoFormat(pix_fmt)
        except ValueError as exc:
            raise UserInputError(
                f"unknown pixel format '{pix_fmt}' (--pix-fmt)", option="--pix-fmt", value=pix_fmt
            ) from exc
        return encoder, pix_fmt, options


def padded_size(pix_fmt: str, width: int, height: int) -> tuple[int, int]:
    """`width` x `height` rounded up to whole chroma samples of `pix_fmt` (4:2:0: even)."""
    probe = av.VideoFormat(pix_fmt, 64, 64)
    chroma = [c for c in probe.components if c.is_chroma]
    step_x = 64 // chroma[0].width if chroma else 1
    step_y = 64 // chroma[0].height if chroma else 1
    return -(-width // step_x) * step_x, -(-height // step_y) * step_y


def plan_encode(
    settings: EncodeSettings,
    width: int,
    height: int,
    *,
    format_name: str = "mp4",
    rate: Fraction = Fraction(25),
) -> tuple[int, int]:
    """The size frames are encoded at: the input's, or `padded_size` where the encoder
    refuses the input's. Opens the encoder on a blank frame in memory (and closes it), so
    a setting it refuses is a UserInputError now, naming the setting, not after decoding.
    """
    encoder, pix_fmt, options = settings.resolve()
    formats = av.Codec(encoder, "w").video_formats or ()
    names = [f.name for f in formats]
    if names and pix_fmt not in names:
        raise UserInputError(
            f"--pix-fmt {pix_fmt} is not supported by --codec {settings.codec} ({encoder}); "
            f"use one of {', '.join(names[:12])}",
            option="--pix-fmt",
            value=pix_fmt,
            allowed=tuple(names),
        )
    failure = _trial(encoder, pix_fmt, options, width, height, format_name, rate)
    if failure is None:
        return width, height
    padded = padded_size(pix_fmt, width, height)
    if padded != (width, height):
        if _trial(encoder, pix_fmt, options, *padded, format_name, rate) is None:
            return padded
    for key, flag in (("preset", "--preset"), ("crf", "--crf")):
        if key in options:
            rest = {k: v for k, v in options.items() if k != key}
            if _trial(encoder, pix_fmt, rest, width, height, format_name, rate) is None:
                raise UserInputError(
                    f"the {settings.codec} encoder ({encoder}) refuses {flag} {options[key]} "
                    f"({failure}); choose another value",
                    option=flag,
                    value=options[key],
                )
    raise UserInputError(
        f"the {settings.codec} encoder ({encoder}) cannot encode a {width}x{height} {pix_fmt} "
        f"video ({failure}); choose another --codec or --pix-fmt",
        option="--codec",
        value=settings.codec,
    )


def _trial(
    encoder: str,
    pix_fmt: str,
    options: dict[str, str],
    width: int,
    height: int,
    format_name: str,
    rate: Fraction,
) -> str | None:
    """Encode one blank frame into memory; None if that worked, else FFmpeg's reason."""
    try:
        with av.open(io.BytesIO(), mode="w", format=format_name) as out:
            stream = cast(av.VideoStream, out.add_stream(encoder, rate=rate, options=dict(options)))
            stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
            stream.time_base = stream.codec_context.time_base = Fraction(1) / rate
            blank = av.VideoFrame(width, height, pix_fmt)
            for plane in blank.planes:
                plane.update(bytes(plane.buffer_size))
            blank.pts = 0
            out.mux(stream.encode(blank))
            out.mux(stream.encode(None))
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        return ffmpeg_reason(exc)
    return None


def pad_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """An (H, W, C) image grown to `height` x `width` by repeating its last row and column."""
    extra_y, extra_x = height - image.shape[0], width - image.shape[1]
    if extra_y == 0 and extra_x == 0:
        return image
    if extra_y < 0 or extra_x < 0:
        raise ValueError(f"frame {image.shape[1]}x{image.shape[0]} is larger than {width}x{height}")
    return np.pad(image, ((0, extra_y), (0, extra_x), (0, 0)), mode="edge")


def container_supports(format_name: str, codec: str) -> bool:
    """Whether an FFmpeg muxer can store a codec (by codec name, e.g. 'prores')."""
    with av.open(io.BytesIO(), mode="w", format=format_name) as probe:
        return codec in probe.supported_codecs


class SegmentEncoder:
    """Encodes frames into one file; timestamps are the input's, shifted by `pts_offset`.

    Not thread-safe: one thread feeds it (the pipeline's sink).
    """

    def __init__(
        self,
        path: Path,
        *,
        format_name: str | None,
        settings: EncodeSettings,
        width: int,
        height: int,
        time_base: Fraction,
        rate: Fraction,
        pts_offset: int = 0,
    ) -> None:
        encoder, pix_fmt, options = settings.resolve()
        self.path = Path(path)
        self._offset = pts_offset
        self._time_base = time_base
        self.frames = 0
        try:
            self._container = av.open(str(path), mode="w", format=format_name)
        except OSError as exc:
            raise translate_write_error(exc, path) from exc
        try:
            stream = cast(
                av.VideoStream, self._container.add_stream(encoder, rate=rate, options=options)
            )
            stream.width, stream.height = width, height
            stream.pix_fmt = pix_fmt
            stream.time_base = time_base
            stream.codec_context.time_base = time_base
            stream.thread_type = "AUTO"
        except (av.error.FFmpegError, ValueError) as exc:
            self._container.close()
            raise UserInputError(
                f"cannot set up the {settings.codec} encoder with pixel format {pix_fmt}: {exc}",
                path=path,
                option="--pix-fmt",
                value=pix_fmt,
            ) from exc
        self._stream = stream

    def encode(self, frame: Frame) -> None:
        """Encode one frame; an RGB frame smaller than the stream (an odd-sized input the
        encoder needs even) is padded by repeating its last row and column."""
        if frame.layout == I420:
            vf = av.VideoFrame.from_ndarray(frame.image, format="yuv420p")
        else:
            image = pad_image(frame.image, self._stream.width, self._stream.height)
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
        vf.pts = (frame.pts if frame.pts is not None else frame.index) - self._offset
        vf.time_base = self._time_base
        try:
            packets = self._stream.encode(vf)
        except av.error.FFmpegError as exc:
            raise OutputError(
                f"encoding {one_line(str(self.path))} failed at frame {frame.index} "
                f"({ffmpeg_reason(exc)})",
                path=self.path,
            ) from exc
        self._mux(packets)
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        try:
            self._mux(self._stream.encode(None))
            self._container.close()
        except OSError as exc:
            raise translate_write_error(exc, self.path) from exc

    def abort(self) -> None:
        """Close without flushing (after an error); the file is left for the caller."""
        try:
            self._container.close()
        except (OSError, av.error.FFmpegError) as exc:
            # The file is discarded by the caller; raising here would hide the first error.
            _log.info("closing %s after an error failed too: %s", self.path, exc)

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except OSError as exc:
            raise translate_write_error(exc, self.path) from exc
