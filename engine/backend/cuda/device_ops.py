"""The swap stage's pixel work on device frames: the CUDA backend's `HostImageOps`.

Frames, crops, swaps and masks stay device arrays; what crosses to the host is small:
SCRFD's raw outputs (its 640 letterbox too when ONNX Runtime runs it on the CPU; the
frame for detectors that only run on the CPU), 64x36 thumbnails, and the 224 crops the
landmark network reads. Each step mirrors `ghost_engine.backend.host_ops.HostImageOps`,
and a test runs both on the same frames (emulated flavour) and compares the outputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ghost_engine.backend.cuda.context import DeviceContext
from ghost_engine.backend.cuda.kernel_set import KernelSet
from ghost_engine.backend.host_ops import THUMB_SIZE, Crops
from ghost_engine.face.geometry import CROP_SIZE, GENERATOR_SIZE, estimate_norm
from ghost_engine.face.mask import CROP, LandmarkLayout, MaskParams, lift_eyebrows
from ghost_engine.face.paste import color_match
from ghost_engine.interfaces import BlobDetector, DeviceFrameDetector
from ghost_engine.runtime.cuda_graphs import GraphedForward
from ghost_engine.types import Face


@dataclass(frozen=True)
class DeviceOpsConfig:
    """half: run the generator with fp16 weights on a GPU (GHOST's inference is
    `G.half()`), converted once rather than re-cast on every call as autocast would;
    generator_engine: a TensorRT engine of the generator to run instead of PyTorch;
    cuda_graphs: replay the PyTorch generator from CUDA graphs (`cuda/graphs.py`)."""

    half: bool = True
    generator_engine: Path | None = None
    cuda_graphs: bool = True


class DeviceImageOps:
    """Pixel work on `DeviceFrame`s (see module doc)."""

    name = "cuda"

    def __init__(
        self, ctx: DeviceContext, kernels: KernelSet, config: DeviceOpsConfig = DeviceOpsConfig()
    ) -> None:
        self.ctx = ctx
        self.k = kernels
        self.config = config
        self._prepared: set[int] = set()  # generator modules already in their GPU layout
        self._z_pinned: Any = None  # page-locked staging for the identities, grown as needed
        self._z_copied: Any = None  # event: the last copy out of `_z_pinned` is done
        self._engine: Any = None  # the TensorRT generator, loaded on first use
        self._graphed: dict[int, GraphedForward] = {}  # per generator module

    # -- analysis -------------------------------------------------------------------------

    def detect(self, detector: Any, frames: Sequence[Any]) -> list[list[Face]]:
        """SCRFD gets its letterboxed blobs made on the device, handed over as one batch
        (kept on the device when its session runs PyTorch there); detectors that read
        device frames themselves get them; any other detector gets host copies."""
        if isinstance(detector, DeviceFrameDetector):
            return detector(frames)
        if not isinstance(detector, BlobDetector):
            return detector([self.ctx.to_host(f.image) for f in frames])
        if not frames:
            return []
        import torch

        size = detector.input_side
        on_device = detector.accepts_device_blobs
        blobs: list[Any] = []  # device tensors or host arrays, as the session takes them
        scales = []
        for frame in frames:
            blob, geo = self.k.letterbox(frame.image, size)
            blobs.append(self.ctx.to_torch(blob) if on_device else self.ctx.to_host(blob))
            scales.append(geo.scale)
        batch = torch.cat(blobs) if on_device else np.concatenate(blobs)
        return detector.detect_blob(batch, scales)

    def thumbnail(self, frame: Any) -> np.ndarray:
        """Grey (36, 64) float32 thumbnail (area average, as cv2.INTER_AREA)."""
        import torch
        import torch.nn.functional as F

        x = self.ctx.to_torch(frame.image).permute(2, 0, 1)[None].float()
        small = F.interpolate(x, size=THUMB_SIZE[::-1], mode="area")
        return small.mean(dim=1)[0].to(torch.float32).cpu().numpy()

    def crops(self, jobs: Sequence[tuple[Any, np.ndarray]], size: int = CROP_SIZE) -> Crops:
        """GHOST's aligned crops, one batched warp per frame (matrices from the host)."""
        matrices = np.empty((len(jobs), 2, 3))
        for i, (_, kps) in enumerate(jobs):
            matrices[i], _ = estimate_norm(kps, size)
        if not jobs:
            return Crops(self.ctx.empty((0, size, size, 3)), matrices)
        groups: dict[int, list[int]] = {}
        frames: dict[int, Any] = {}
        for i, (frame, _) in enumerate(jobs):
            groups.setdefault(id(frame), []).append(i)
            frames[id(frame)] = frame
        parts, order = [], []
        for key, rows in groups.items():
            parts.append(self.k.warp_affine_batch(frames[key].image, matrices[rows], size))
            order.extend(rows)
        images = parts[0] if len(parts) == 1 else self.ctx.xp.concatenate(parts)
        if order != sorted(order):
            images = images[self.ctx.xp.asarray(np.argsort(order))]
        return Crops(self.ctx.xp.ascontiguousarray(images), matrices)

    def to_host(self, images: Any) -> np.ndarray:
        return self.ctx.to_host(images)

    # -- synthesis ------------------------------------------------------------------------

    def swaps(self, generator: Any, enhancer: Any, crops: Any, z: Any, timed: Any) -> Any:
        """Generated (and renovated) faces, (N, 224, 224, 3) uint8 on the device."""
        if len(crops) == 0 or (generator.module is None and enhancer is None):
            return crops.copy()
        if generator.runtime == "onnxruntime" and enhancer is None:
            with timed("generator"):  # a CPU runtime: the crops go over and back
                return self.ctx.upload(generator(self.to_host(crops), z))
        with timed("generator"):
            batches = self._generate(generator, crops, z)
        if enhancer is not None:
            with timed("enhance"):
                batches = [enhancer(b) for b in batches]
        with timed("generator"):
            return self._pixels(batches, int(crops.shape[1]))

    def _generate(self, generator: Any, crops: Any, z: Any) -> list[Any]:
        """The generator's (n, 3, 256, 256) outputs in [-1, 1] per batch, on the device."""
        import torch
        import torch.nn.functional as F

        device = self.ctx.torch_device
        x = self.ctx.to_torch(crops).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(GENERATOR_SIZE, GENERATOR_SIZE), mode="bilinear")
        x = (x / 255.0 - 0.5) / 0.5
        if generator.module is None:
            return [x]
        if generator.runtime == "onnxruntime":
            raise ValueError(
                "the face enhancer needs the generator on PyTorch with the CUDA backend; "
                "use --runtime torch"
            )
        if self.config.generator_engine is not None:
            zt = torch.from_numpy(np.asarray(z, np.float32)).to(device)
            return self._generate_tensorrt(
                self.config.generator_engine, x, zt, generator.batch_size
            )
        zt = self._identities(z)
        if self.ctx.on_gpu:  # cuDNN's fp16 convolutions are fastest on NHWC
            dtype = self._prepare(generator.module)
            x = x.to(dtype).contiguous(memory_format=torch.channels_last)
            zt = zt.to(dtype)
        forward = self._forward(generator)
        out = []
        with torch.inference_mode():
            step = generator.batch_size
            for i in range(0, len(x), step):
                out.append(forward(x[i : i + step], zt[i : i + step]).float())
        return out

    def _identities(self, z: Any) -> Any:
        """`z_id` on the device; on a GPU copied from a reused page-locked buffer, so the
        upload is a DMA ordered on the stream rather than a pageable staging copy. The host
        waits only before overwriting the buffer, for the previous call's copy (long done
        by then, so in practice no wait)."""
        import torch

        host = torch.from_numpy(np.ascontiguousarray(z, np.float32))
        if not self.ctx.on_gpu:
            return host.to(self.ctx.torch_device)
        if self._z_pinned is None or self._z_pinned.shape[0] < host.shape[0]:
            rows = max(host.shape[0], 64)
            self._z_pinned = torch.empty((rows, host.shape[1]), pin_memory=True)
        if self._z_copied is not None:
            self._z_copied.synchronize()
        staged = self._z_pinned[: host.shape[0]]
        staged.copy_(host)
        out = staged.to(self.ctx.torch_device, non_blocking=True)
        self._z_copied = torch.cuda.Event()
        self._z_copied.record()
        return out

    def _forward(self, generator: Any) -> Any:
        """The generator's (x, z) -> y (in the weights' dtype, see `_prepare`), replayed
        from CUDA graphs on a GPU unless configured off; every batch bucket is captured on
        the first call, so a new batch size met mid-stream replays instead of capturing."""
        module = generator.module

        def eager(x: Any, z: Any) -> Any:
            y, _ = module(x, z)
            return y

        if not (self.ctx.on_gpu and self.config.cuda_graphs):
            return eager
        graphed = self._graphed.get(id(module))
        if graphed is None:
            graphed = GraphedForward(eager, generator.batch_size, capture_all=True)
            self._graphed[id(module)] = graphed
        return graphed

    def graph_summary(self) -> dict:
        """Captured batch sizes per generator, or why capture failed (for the report)."""
        return {
            "captured_batch_sizes": sorted(
                {n for g in self._graphed.values() for n in g.captured_sizes}
            ),
            "failed": next((g.failed for g in self._graphed.values() if g.failed), None),
        }

    def _generate_tensorrt(self, engine_file: Path, x: Any, z: Any, step: int) -> list[Any]:
        """The generator as a TensorRT engine (inputs `target`, `z_id`; output `swap`, as
        `ghost-engine export` names them), enqueued on PyTorch's current stream."""
        import torch

        if self._engine is None:
            from ghost_engine.runtime.tensorrt import TrtEngine

            self._engine = TrtEngine(engine_file)
        engine = self._engine
        kinds = {np.dtype(np.float16): torch.float16, np.dtype(np.float32): torch.float32}
        stream = torch.cuda.current_stream().cuda_stream
        out = []
        for i in range(0, len(x), step):
            xb = x[i : i + step].to(kinds[engine.dtype("target")]).contiguous()
            zb = z[i : i + step].to(kinds[engine.dtype("z_id")]).contiguous()
            shape = engine.output_shapes({"target": tuple(xb.shape), "z_id": tuple(zb.shape)})
            y = torch.empty(shape["swap"], dtype=kinds[engine.dtype("swap")], device=x.device)
            engine.run({"target": xb, "z_id": zb}, {"swap": y}, stream)
            out.append(y.float())
        return out

    def _prepare(self, module: Any) -> Any:
        """Puts the generator in its GPU layout once (channels-last, fp16 weights when
        `half`) and returns the dtype its inputs take. In place: the module belongs to
        this stage's generator alone."""
        import torch

        dtype = torch.float16 if self.config.half else torch.float32
        if id(module) not in self._prepared:
            module.to(dtype=dtype, memory_format=torch.channels_last)
            self._prepared.add(id(module))
        return dtype

    def _pixels(self, batches: list[Any], size: int) -> Any:
        """[-1, 1] batches -> (N, size, size, 3) uint8, as `generator_output` on the host:
        truncate to uint8 at 256, then bilinear to `size`, rounded."""
        import torch
        import torch.nn.functional as F

        y = torch.cat(batches).float()
        y = ((y * 0.5 + 0.5) * 255.0).clamp(0, 255).to(torch.uint8).float()
        y = F.interpolate(y, size=(size, size), mode="bilinear")
        y = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
        return self.ctx.from_torch(y)

    def mask(self, landmarks: np.ndarray, params: MaskParams, layout: LandmarkLayout) -> Any:
        """The blend mask, uint8 (224, 224) on the device (255 = swap)."""
        if landmarks.shape != (layout.num_points, 2):
            raise ValueError(
                f"layout {layout.name} needs ({layout.num_points}, 2) landmarks, "
                f"got {landmarks.shape}"
            )
        hull = self.k.fill_hull(lift_eyebrows(landmarks, layout, params.brow_lift), CROP, CROP)
        mask = self.k.erode_dilate(hull, int(params.erode))
        mask = self.k.zero_border(mask, int(round(params.sigma_y * 2)))
        return self.k.gaussian_blur(mask, params.sigma_x, params.sigma_y)

    def host_mask(self, mask: Any) -> np.ndarray:
        return self.ctx.to_host(mask).astype(np.float32) / np.float32(255.0)

    def color_match(self, swap: Any, target: Any, mask: Any) -> Any:
        """Lab statistics are computed on the host (two 224 crops and a mask cross)."""
        matched = color_match(self.to_host(swap), self.to_host(target), self.host_mask(mask))
        return self.ctx.upload(matched)

    def paste(self, frame: Any, swap: Any, mask: Any, matrix: np.ndarray) -> None:
        self.k.blend_inverse_warp(frame.image, swap, mask, matrix)

    def draw(self, frame: Any, painter: Any) -> None:
        """The debug overlay draws on a host copy that is uploaded back (debug only)."""
        image = self.ctx.to_host(frame.image).copy()
        painter(image)
        self.ctx.upload(image, out=frame.image)
