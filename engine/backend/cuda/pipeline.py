"""The CUDA backend for one video run: device reader, swap stage on device, download.

`DeviceVideoRun` is a context manager giving what `run_video` needs: the stages
(the swap stage with `DeviceImageOps`, split into analysis and synthesis so detection
overlaps the generator, then `DownloadStage`) and a `read` function that
opens the device frame source (NVDEC, or PyAV plus upload). Each runs in its own thread
of `run_pipeline`, joined by bounded queues, so decode, swap, copies back and x264
encoding overlap. GPU work is ordered on the default stream; device-to-host copies run
on their own stream after an event (see `DeviceContext`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghost_engine.backend.cuda.context import DeviceContext, device_context
from ghost_engine.backend.cuda.device_ops import DeviceImageOps, DeviceOpsConfig
from ghost_engine.backend.cuda.kernel_set import kernels_for
from ghost_engine.backend.cuda.readback import DownloadStage
from ghost_engine.interfaces import StreamStage

if TYPE_CHECKING:  # the runner's buffering settings and the swap stage; never built here
    from ghost_engine.face.stage import SwapStage
    from ghost_engine.pipeline.runner import PipelineConfig

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceBackendConfig:
    """flavour: "cuda" on a GPU, "emulated" to run the backend's code on a CPU (tests).
    prefer_nvdec: decode with NVDEC where the stream allows; half: fp16 generator;
    cuda_graphs: the generator replayed from CUDA graphs."""

    flavour: str = "cuda"
    prefer_nvdec: bool = True
    half: bool = True
    cuda_graphs: bool = True
    pool_timeout_s: float = 120.0
    planar: bool = True  # I420 on the device when the encoder takes yuv420p


def device_pool_size(pipeline: PipelineConfig, lookahead: int, face_stages: int = 2) -> int:
    """Device frame buffers enough for every frame that can be in flight at once.

    The decoder's partial batch (B) and its queue (Q batches of B); the analysis stage's
    input and held look-ahead (B + L); after each face stage a queue (Q batches of up to
    B + L) and the next stage's batch (B + L); one spare. With fewer, the decoder could
    wait for a buffer that a later stage holds while it waits for frames.
    """
    b, q, ahead = pipeline.batch_size, pipeline.queue_batches, lookahead
    return b + q * b + (b + ahead) + face_stages * (q + 1) * (b + ahead) + 1


def pinned_pool_size(pipeline: PipelineConfig, lookahead: int) -> int:
    """Pinned host frames: the batch being copied, the encoder's queue and its batch."""
    return (pipeline.queue_batches + 2) * (pipeline.batch_size + lookahead) + 1


class DeviceVideoRun:
    """`with DeviceVideoRun(make_stage, ...) as (stages, read): run_video(...)`.

    `make_stage(ops)` builds the swap stage on this run's device image ops (or `stage`
    is one already built, whose parts get those ops). `encoder_pix_fmt` is the
    encoder's pixel format: with "yuv420p" the frames are converted on the device (see
    `DownloadStage`); anything else gets RGB.

    `decode_backend` / `decode_reason` say which decoder the run used and why.
    """

    def __init__(
        self,
        make_stage: Callable[[DeviceImageOps], SwapStage] | None,
        pipeline: PipelineConfig,
        backend: DeviceBackendConfig = DeviceBackendConfig(),
        stage: SwapStage | None = None,
        encoder_pix_fmt: str | None = None,
        generator_engine: Path | None = None,
    ) -> None:
        self.make_stage = make_stage
        self.pipeline = pipeline
        self.backend = backend
        self.ops_config = DeviceOpsConfig(
            half=backend.half, generator_engine=generator_engine, cuda_graphs=backend.cuda_graphs
        )
        self.ctx: DeviceContext | None = None
        self.stage = stage
        self.planar = backend.planar and encoder_pix_fmt == "yuv420p"
        self.decode_backend = ""
        self.decode_reason = ""
        self._stop = threading.Event()
        self._sources: list[Any] = []
        self._ops: DeviceImageOps | None = None

    @property
    def stop(self) -> threading.Event:
        """Set when the run stops; pass it to `run_video`/`run_pipeline` so a decoder
        waiting for a buffer gives up when a later step has failed."""
        return self._stop

    def make_ops(self) -> DeviceImageOps:
        """Device image ops on this run's context (made on first use)."""
        if self.ctx is None:
            self.ctx = device_context(self.backend.flavour)
        self._ops = DeviceImageOps(self.ctx, kernels_for(self.backend.flavour), self.ops_config)
        return self._ops

    def __enter__(self) -> tuple[list[StreamStage], Any]:
        ops = self.make_ops()
        if self.stage is None:
            if self.make_stage is None:
                raise ValueError("DeviceVideoRun needs a stage or a way to make one")
            self.stage = self.make_stage(ops)
        else:
            self.stage.use_ops(ops)
        lookahead = self.stage.analysis.lookahead
        face_stages = self.stage.split()
        self._pool_size = device_pool_size(self.pipeline, lookahead, len(face_stages))
        download = DownloadStage(
            ops.ctx,
            pinned_pool_size(self.pipeline, lookahead),
            self.backend.pool_timeout_s,
            kernels=ops.k,
            planar=self.planar,
        )
        return [*face_stages, download], self.read

    def read(
        self,
        path: Path,
        *,
        start_s: float | None = None,
        end_s: float | None = None,
        first_index: int = 0,
    ) -> Any:
        """The device frame source for `path` (what `run_video` calls instead of
        `read_frames`)."""
        from ghost_engine.backend.cuda.decode import open_device_source

        if self.ctx is None:
            raise RuntimeError("DeviceVideoRun.read is called inside its `with` block")
        source = open_device_source(
            Path(path),
            self.ctx,
            self._pool_size,
            start_s=start_s,
            end_s=end_s,
            first_index=first_index,
            prefer_nvdec=self.backend.prefer_nvdec,
            stop=self._stop,
        )
        self.decode_backend, self.decode_reason = source.backend, source.reason
        self._sources.append(source)
        return source

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # a decoder waiting for a buffer stops instead of timing out
        for source in self._sources:
            source.close()
        if self.stage is not None:
            self.stage.close()

    def summary(self) -> dict:
        """What the report records about the backend."""
        return {
            "flavour": self.backend.flavour,
            "decode": self.decode_backend,
            "decode_fallback_reason": self.decode_reason,
            "encoder_input": "i420 from the device" if self.planar else "rgb24",
            "generator_fp16": self.backend.half and self.backend.flavour == "cuda",
            "generator_engine": str(self.ops_config.generator_engine or ""),
            "generator_cuda_graphs": self._ops.graph_summary() if self._ops else {},
        }
