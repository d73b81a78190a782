"""Device frame sources: video frames decoded straight into pooled device buffers.

`NvdecSource` decodes on the GPU's video engine (NVDEC, through PyNvVideoCodec) and turns
each NV12 surface into RGB with the CUDA twin of the CPU path's conversion
(`kernels.cuda.colour`, the stream's matrix, range and chroma siting as `read_frames`
reads them), so decoded frames never cross PCIe and both paths give the same colours.
`UploadSource` is the fallback: PyAV decodes on the CPU (`read_frames`) and each frame is
copied to the device through pinned memory. `open_device_source` picks one and says why
in `.reason`.

Both yield device `Frame`s numbered and timestamped as `read_frames` numbers its frames, in
buffers from one fixed `BufferPool`: a source waits while the consumer holds every buffer,
so memory stays constant on any video length. A source is iterated once, from one thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ghost_engine.backend.cuda.context import DeviceContext
from ghost_engine.backend.cuda.frames import BufferPool, device_frame
from ghost_engine.errors import NvdecUnavailable, OptionalDependencyError
from ghost_engine.kernels.colour import YuvFormat
from ghost_engine.runtime.gpu_packages import NVCODEC_REQUIREMENT
from ghost_engine.types import Frame
from ghost_engine.video.reader import VideoInfo, probe_video, read_frames, stream_format

log = logging.getLogger(__name__)

# PyAV codec names of the streams NVDEC decodes (which ones a given card decodes is asked
# of the driver when the source opens).
NVDEC_CODECS = frozenset(
    {"h264", "hevc", "av1", "vp8", "vp9", "mpeg1video", "mpeg2video", "mpeg4", "vc1"}
)
# PyAV pixel formats of the streams whose NVDEC output is 8-bit NV12 with the same samples
NVDEC_PIX_FMTS = frozenset({"yuv420p", "yuvj420p"})
_EPS = 1e-6  # seconds; the same slack `read_frames` gives its range ends


class _Source:
    """What both sources share: the pool, the stop event and one-shot iteration."""

    backend = ""

    def __init__(self, ctx: DeviceContext, pool: BufferPool, stop: threading.Event | None) -> None:
        self.ctx = ctx
        self.pool = pool
        self.reason = ""
        self._stop = stop
        self._started = False
        self._closed = False

    def __iter__(self) -> Iterator[Frame]:
        if self._started or self._closed:
            raise RuntimeError(f"a {self.backend} frame source is read once; open a new one")
        self._started = True
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def _acquire(self) -> Any:
        """A free buffer; waits while the consumer holds all of them (InterruptedError on stop)."""
        if self._stop is not None and self._stop.is_set():
            raise InterruptedError(f"{self.pool.name} pool: stopped")
        return self.pool.acquire(stop=self._stop)

    def close(self) -> None:
        """Release the decoder (idempotent); frames already handed out stay valid."""
        self._closed = True

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class UploadSource(_Source):
    """PyAV on the CPU, then a copy through one pinned host buffer into a pool buffer."""

    backend = "upload"

    def __init__(
        self,
        path: Path,
        ctx: DeviceContext,
        pool: BufferPool,
        *,
        start_s: float | None = None,
        end_s: float | None = None,
        first_index: int = 0,
        stop: threading.Event | None = None,
        reason: str = "",
    ) -> None:
        super().__init__(ctx, pool, stop)
        self.reason = reason
        self._stream = ctx.new_stream()  # uploads wait for their copy only
        self._reader = read_frames(path, start_s=start_s, end_s=end_s, first_index=first_index)

    def _frames(self) -> Iterator[Frame]:
        host = None
        for frame in self._reader:
            if host is None:
                # Page-locked, so the copy is a DMA; reused, as `upload` returns when done.
                host = self.ctx.pinned_empty(frame.image.shape)
            buffer = self._acquire()
            try:
                np.copyto(host, frame.image)
                self.ctx.upload(host, out=buffer, stream=self._stream)
            except BaseException:
                self.pool.release(buffer)
                raise
            yield device_frame(frame.index, buffer, frame.pts, frame.time_base, self.pool)

    def close(self) -> None:
        super().close()
        self._reader.close()


class NvdecSource(_Source):
    """NVDEC into device memory, then NV12 -> RGB by the one conversion into a pool buffer.

    Decodes from the start of the file and drops the frames before `start_s` (NVDEC
    decodes far faster than real time, and no seek means no keyframe bookkeeping).
    `.reason` is empty when PyNvVideoCodec loaded whole, else how it was loaded (its
    decoder module alone where NVENC's driver library is missing).
    """

    backend = "nvdec"

    def __init__(
        self,
        path: Path,
        ctx: DeviceContext,
        pool: BufferPool,
        *,
        info: VideoInfo,
        start_s: float | None = None,
        end_s: float | None = None,
        first_index: int = 0,
        stop: threading.Event | None = None,
    ) -> None:
        from ghost_engine.runtime.gpu_packages import nvcodec_load_note, require_nvcodec

        super().__init__(ctx, pool, stop)
        nvc = require_nvcodec()
        self.reason = nvcodec_load_note(nvc)
        self._format = nvdec_format(path)
        self._time_base = info.time_base
        # Frames before the stream's start are ones FFmpeg discards (an edit list's
        # pre-roll); NVDEC decodes them, so they are dropped here to match the CPU path.
        self._from_s = info.start_s if start_s is None else max(start_s, info.start_s)
        self._end_s = end_s
        self._first_index = first_index
        self._demuxer = nvc.CreateDemuxer(filename=str(path))
        _check_time_base(nvc, self._demuxer, info.time_base)
        codec = self._demuxer.GetNvCodecId()
        caps = nvc.GetDecoderCaps(
            gpuid=0,
            codec=codec,
            chromaformat=self._demuxer.ChromaFormat(),
            bitdepth=self._demuxer.BitDepth(),
        )
        if not caps.get("supported"):
            raise NvdecUnavailable(f"this GPU's NVDEC does not decode {info.codec} ({codec})")
        if info.width > caps.get("width_max", info.width) or info.height > caps.get(
            "height_max", info.height
        ):
            raise NvdecUnavailable(
                f"{info.width}x{info.height} is larger than this GPU's NVDEC decodes for "
                f"{info.codec} ({caps['width_max']}x{caps['height_max']})"
            )
        # The decoder copies each picture out on our own non-blocking stream and waits
        # for it; the conversion runs on the same stream and is waited for before the
        # frame is handed on, so it reads its picture before the next Decode() overwrites
        # that surface, and neither waits for the compute queued on the default stream.
        self._stream = ctx.new_stream()
        self._decoder = nvc.CreateDecoder(
            gpuid=0,
            codec=codec,
            cudacontext=0,
            cudastream=0 if self._stream is None else self._stream.ptr,
            usedevicememory=True,
        )
        self._scratch: Any = None

    def _frames(self) -> Iterator[Frame]:
        from numba import cuda

        from ghost_engine.kernels.cuda.colour import nv12_to_rgb

        launch_stream = cuda.external_stream(self._stream.ptr)
        index = self._first_index
        # Iterating the demuxer ends with an empty packet, which flushes the decoder.
        for packet in self._demuxer:
            # Decode() reuses its output surfaces on the next call: each one is converted
            # (and yielded) before the loop asks for more.
            for decoded in self._decoder.Decode(packet):
                pts = int(decoded.getPTS())
                t = float(pts * self._time_base)
                if t < self._from_s - _EPS:
                    continue
                if self._end_s is not None and t >= self._end_s - _EPS:
                    return
                buffer = self._acquire()
                try:
                    with self._stream:  # a pitched frame's copy goes on our stream too
                        nv12 = self._nv12(decoded, buffer.shape[:2])
                    nv12_to_rgb(nv12, self._format, out=buffer, stream=launch_stream)
                    self._stream.synchronize()
                except BaseException:
                    self.pool.release(buffer)
                    raise
                yield device_frame(index, buffer, pts, self._time_base, self.pool)
                index += 1

    def _nv12(self, decoded: Any, size: tuple[int, int]) -> Any:
        planes = [view.__cuda_array_interface__ for view in decoded.cuda()[:2]]
        if tuple(planes[0]["shape"][:2]) != tuple(size):
            raise RuntimeError(
                f"NVDEC gave {tuple(planes[0]['shape'][:2])} frames, the stream header says "
                f"{tuple(size)}; decode this file with --device cpu"
            )
        if self._scratch is None:
            self._scratch = self.ctx.empty((size[0] * 3 // 2, size[1]), np.uint8)
        cupy = self.ctx.xp
        return nv12_from_planes(
            planes,
            lambda ptr, shape, pitch: _cupy_view(cupy, ptr, shape, pitch, decoded),
            self._scratch,
        )

    def close(self) -> None:
        super().close()
        # PyNvVideoCodec frees the decoder session and the demuxer when they are dropped.
        self._decoder = None
        self._demuxer = None


DeviceSource = NvdecSource | UploadSource


def open_device_source(
    path: Path,
    ctx: DeviceContext,
    pool_size: int = 4,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    first_index: int = 0,
    prefer_nvdec: bool = True,
    stop: threading.Event | None = None,
) -> DeviceSource:
    """A frame source for `path` with a pool of `pool_size` (H, W, 3) uint8 device buffers.

    NVDEC when the context is on a GPU, PyNvVideoCodec loads and the GPU decodes this
    stream; otherwise PyAV plus an upload, with the reason in `.reason` (logged at INFO).
    """
    path = Path(path)
    info = probe_video(path)
    pool = BufferPool(
        lambda: ctx.empty((info.height, info.width, 3), np.uint8), pool_size, "decoded frame"
    )
    reason = _nvdec_refusal(ctx, info, prefer_nvdec)
    if not reason:
        try:
            return NvdecSource(
                path,
                ctx,
                pool,
                info=info,
                start_s=start_s,
                end_s=end_s,
                first_index=first_index,
                stop=stop,
            )
        except (OptionalDependencyError, NvdecUnavailable) as exc:
            reason = str(exc)
        except Exception as exc:  # the driver's own refusal: no NVDEC session, no codec
            reason = f"NVDEC could not open this {info.codec} stream ({type(exc).__name__}: {exc})"
    log.info("%s: decoding on the CPU and uploading frames: %s", path.name, reason)
    return UploadSource(
        path,
        ctx,
        pool,
        start_s=start_s,
        end_s=end_s,
        first_index=first_index,
        stop=stop,
        reason=reason,
    )


def _nvdec_refusal(ctx: DeviceContext, info: VideoInfo, prefer_nvdec: bool) -> str:
    """Why NVDEC is not even tried (no import needed to tell), or ""."""
    if not prefer_nvdec:
        return "NVDEC was not asked for (prefer_nvdec=False)"
    if ctx.flavour != "cuda":
        return f"NVDEC needs a GPU and the {ctx.flavour!r} device context is not on one"
    if info.rotation:
        return (
            f"the video is rotated by {info.rotation} degrees and NVDEC frames are not "
            "turned upright yet"
        )
    if info.codec not in NVDEC_CODECS:
        return f"NVDEC does not decode {info.codec} (it decodes {', '.join(sorted(NVDEC_CODECS))})"
    if info.width % 2 or info.height % 2:
        return f"the frame size {info.width}x{info.height} is odd and NV12 needs even sizes"
    return ""


def nvdec_format(path: Path) -> YuvFormat:
    """How to read the NV12 frames NVDEC gives for `path`: the `YuvFormat` the CPU path
    (`read_frames`) reads the stream with. Raises `NvdecUnavailable` for streams NVDEC
    would not give as 8-bit 4:2:0 NV12, or whose colours the conversion does not take."""
    pix_fmt, fmt = stream_format(path)
    if pix_fmt not in NVDEC_PIX_FMTS:
        raise NvdecUnavailable(
            f"NVDEC frames are converted from 8-bit 4:2:0 ({', '.join(sorted(NVDEC_PIX_FMTS))}), "
            f"not {pix_fmt}"
        )
    if fmt is None:
        raise NvdecUnavailable(
            "the stream's colour matrix is not one the YUV to RGB conversion takes (BT.601, "
            "BT.709, BT.2020, SMPTE 240M); the CPU decoder converts it"
        )
    return fmt


def nv12_from_planes(
    planes: list[dict], view: Callable[[int, tuple[int, int], int], Any], scratch: Any
) -> Any:
    """One (H * 3 // 2, W) NV12 array from a decoded frame's luma and chroma planes.

    `planes` are the planes' CUDA array interfaces: luma (H, W, 1) and interleaved
    chroma (H / 2, W / 2, 2), each row `pitch` bytes apart. `view(ptr, shape, pitch)`
    wraps device memory without a copy. Planes that already form one contiguous frame are
    returned as one view; pitched ones are copied into `scratch` (H * 3 // 2, W).
    """
    luma, chroma = planes
    height, width = (int(n) for n in luma["shape"][:2])
    luma_pitch = int((luma.get("strides") or (width,))[0])
    chroma_pitch = int((chroma.get("strides") or (width,))[0])
    luma_ptr, chroma_ptr = int(luma["data"][0]), int(chroma["data"][0])
    if luma_pitch == chroma_pitch == width and chroma_ptr == luma_ptr + height * width:
        return view(luma_ptr, (height * 3 // 2, width), width)
    scratch[:height] = view(luma_ptr, (height, width), luma_pitch)
    scratch[height:] = view(chroma_ptr, (height // 2, width), chroma_pitch)
    return scratch


def _cupy_view(cupy: Any, ptr: int, shape: tuple[int, int], pitch: int, owner: Any) -> Any:
    """uint8 rows of `shape` at `ptr`, `pitch` bytes apart, kept alive by `owner`."""
    rows, cols = shape
    memory = cupy.cuda.UnownedMemory(ptr, (rows - 1) * pitch + cols, owner)
    return cupy.ndarray(shape, cupy.uint8, cupy.cuda.MemoryPointer(memory, 0), (pitch, 1))


def _check_time_base(nvc: Any, demuxer: Any, time_base: Fraction) -> None:
    """NVDEC frames carry the demuxer's packet pts; they must count PyAV's units."""
    if not hasattr(demuxer, "GetTimebaseNum"):
        raise NvdecUnavailable(
            f"PyNvVideoCodec {getattr(nvc, '__version__', '?')} does not report the stream "
            f"time base, so timestamps could not be kept; upgrade it: pip install "
            f"'{NVCODEC_REQUIREMENT}'"
        )
    theirs = Fraction(int(demuxer.GetTimebaseNum()), int(demuxer.GetTimebaseDen()))
    if theirs != time_base:
        raise NvdecUnavailable(
            f"PyNvVideoCodec reads the time base as {theirs}, PyAV as {time_base}; "
            "timestamps would not match"
        )
