"""The one backend switch: a device name in, everything that runs on that device out.

    backend = open_backend("cuda")
    with backend.video_run(make_stage, pipeline, encoder_pix_fmt) as run:
        run_video(job, run.stages, report, read=run.read, stop=run.stop)

A `Backend` gives the frame source (PyAV on the host; NVDEC or PyAV plus uploads on the
GPU), the image operations the face stages call (`interfaces.ImageOps`), the kernel
set behind them, a `SessionOpener` that puts every network on the device, and a
description for reports. Nothing outside this package and `ghost_engine.runtime` asks
which device it runs on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghost_engine.backend.sessions import SessionOpener
from ghost_engine.interfaces import ImageOps, StreamStage
from ghost_engine.runtime import devices
from ghost_engine.video.reader import read_frames

if TYPE_CHECKING:
    from ghost_engine.backend.cuda.kernel_set import KernelSet
    from ghost_engine.backend.cuda.pipeline import DeviceBackendConfig
    from ghost_engine.face.stage import SwapStage
    from ghost_engine.pipeline.runner import PipelineConfig

__all__ = ["Backend", "VideoRun", "open_backend"]

_log = logging.getLogger(__name__)

# Builds the swap stage on the image ops it is given (the backend owns the ops).
StageFactory = Callable[[ImageOps], "SwapStage"]


@dataclass
class VideoRun:
    """What a video run needs from the backend: the stages between decode and encode,
    the frame source (`read`, called like `video.reader.read_frames`, which is the host's),
    the stop event a waiting decoder watches, and the report's backend entry."""

    stages: list[StreamStage]
    read: Callable[..., Any] = read_frames
    stop: threading.Event | None = None
    summary: Callable[[], dict] = field(default=lambda: {})


@dataclass(frozen=True)
class Backend:
    """Where frames live and networks run (see the module doc). Made by `open_backend`.

    `frames_on_device`: frames stay in device memory from decode to the encoder's
    hand-off (the CUDA backend); otherwise they are numpy arrays on the host and only
    the networks run on `device`. `cuda` is the device-frame backend's settings.
    """

    name: str
    device: str
    frames_on_device: bool
    sessions: SessionOpener
    cuda: DeviceBackendConfig | None = None

    def image_ops(self) -> ImageOps:
        """Pixel operations for host frames (the device-frame backend makes its own per
        run, on the run's device context: see `video_run`)."""
        from ghost_engine.backend.host_ops import HostImageOps

        return HostImageOps()

    def kernels(self) -> KernelSet:
        """The image kernels behind the image ops: CPU ones, or CUDA twins."""
        from ghost_engine.backend.cuda.kernel_set import cpu_kernels, kernels_for

        return kernels_for(self.cuda.flavour) if self.cuda is not None else cpu_kernels()

    def describe(self) -> dict:
        """The report's entry: backend, network device, where frames live."""
        return {
            "name": self.name,
            "device": self.device,
            "frames": "device" if self.frames_on_device else "host",
        }

    @contextmanager
    def video_run(
        self,
        make_stage: StageFactory | None,
        pipeline: PipelineConfig,
        encoder_pix_fmt: str | None = None,
        stage: SwapStage | None = None,
        generator_engine: Path | None = None,
    ) -> Iterator[VideoRun]:
        """The stages and frame source of one video run; the stage is closed at the end.

        `stage` (optional) is an already built swap stage to run on this backend's ops
        instead of calling `make_stage`; `generator_engine` a TensorRT generator engine
        the device-frame backend runs instead of PyTorch.
        """
        if stage is None and make_stage is None:
            raise ValueError("video_run needs a stage or a way to make one")
        if self.cuda is None:
            built = stage
            if built is None:
                assert make_stage is not None  # one of the two, checked above
                built = make_stage(self.image_ops())
            try:
                yield VideoRun([built])
            finally:
                built.close()
            return
        from ghost_engine.backend.cuda.pipeline import DeviceVideoRun

        run = DeviceVideoRun(
            make_stage,
            pipeline,
            self.cuda,
            stage=stage,
            encoder_pix_fmt=encoder_pix_fmt,
            generator_engine=generator_engine,
        )
        with run as (stages, read):
            yield VideoRun(stages, read, run.stop, run.summary)


def open_backend(device: str = devices.CPU, *, cuda: DeviceBackendConfig | None = None) -> Backend:
    """The backend for `device` ("cpu" or "cuda"), checked before anything loads.

    On "cuda" frames stay on the GPU when the CUDA extra is installed; without it the
    networks still run on the GPU with frames on the host, and a warning says what to
    install. `cuda` chooses the device-frame backend explicitly (its "emulated" flavour
    runs that backend's code on a CPU, for tests).
    """
    if cuda is not None:
        sessions_device = devices.CUDA if cuda.flavour == devices.CUDA else device
        if cuda.flavour == devices.CUDA:
            devices.check_device(devices.CUDA)
        return Backend(
            f"{devices.CUDA}-{cuda.flavour}" if cuda.flavour != devices.CUDA else devices.CUDA,
            sessions_device,
            True,
            SessionOpener(sessions_device),
            cuda,
        )
    devices.check_device(device)
    if not devices.is_gpu(device):
        return Backend(devices.CPU, devices.CPU, False, SessionOpener(devices.CPU))
    from ghost_engine.backend.cuda.context import missing_packages
    from ghost_engine.backend.cuda.pipeline import DeviceBackendConfig

    missing = missing_packages()
    if missing:
        _log.warning(
            "the CUDA backend needs %s (pip install 'ghost-engine[cuda]'); running the "
            "networks on the GPU with frames on the CPU instead",
            ", ".join(missing),
        )
        return Backend("cuda-networks", devices.CUDA, False, SessionOpener(devices.CUDA))
    return Backend(
        devices.CUDA, devices.CUDA, True, SessionOpener(devices.CUDA), DeviceBackendConfig()
    )
