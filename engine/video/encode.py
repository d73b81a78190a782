"""Video encoder settings and one encoder writing one file (a segment of the output).

The codec names users type (`h264`, `hevc`...) map to FFmpeg encoders; options that an
encoder does not have are refused rather than silently ignored.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from ghost_engine.choices import CODECS, check_choice
from ghost_engine.errors import UserInputError
from ghost_engine.types import I420, Frame
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
            options["preset"] = self.preset
        try:
            av.VideoFormat(pix_fmt)
        except ValueError as exc:
            raise UserInputError(
                f"unknown pixel format '{pix_fmt}' (--pix-fmt)", option="--pix-fmt", value=pix_fmt
            ) from exc
        return encoder, pix_fmt, options


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
        format_name: str,
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
            stream = self._container.add_stream(encoder, rate=rate, options=options)
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
        if frame.layout == I420:
            vf = av.VideoFrame.from_ndarray(frame.image, format="yuv420p")
        else:
            vf = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
        vf.pts = (frame.pts if frame.pts is not None else frame.index) - self._offset
        vf.time_base = self._time_base
        self._mux(self._stream.encode(vf))
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
            _log.warning("closing %s after an error failed too: %s", self.path, exc)

    def _mux(self, packets: list[av.Packet]) -> None:
        try:
            self._container.mux(packets)
        except OSError as exc:
            raise translate_write_error(exc, self.path) from exc
