"""Opening every network on the backend's device: the one place a model meets a device.

The face-model loader (`ghost_engine.pipeline.face_models`) decides which files and
weights a run needs; it hands them here and gets back objects that fit the
`ghost_engine.interfaces` protocols, already on the right device and runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ghost_engine.runtime.defaults import default_runtime
from ghost_engine.runtime.devices import is_gpu

if TYPE_CHECKING:  # torch and the model wrappers load with the first network
    import torch

    from ghost_engine.face.enhance import FaceEnhancer
    from ghost_engine.face.generator import GeneratorRunner
    from ghost_engine.face.recognizers import ArcFaceRecognizer
    from ghost_engine.networks.lipspade import LIPSPADEGenerator

# Faces per ONNX Runtime call of the generator on the CPU. Its activations take about
# 135 MB a face at 256x256 (1.1 GB for a batch of 8, more than its weights), while on the
# CPU a bigger batch is no faster: one face a call ran 10% faster than 8 on 2 cores
# (`bench/results/memory_vs_length.json`, "generator_speed").
CPU_ONNX_GENERATOR_FACES = 1


@dataclass(frozen=True)
class SessionOpener:
    """Opens networks on `device` ("cpu" or "cuda")."""

    device: str

    def onnx(self, path: Path) -> Any:
        """An onnxruntime-like session for an ONNX-only model (SCRFD, 2d106det,
        glintr100): ONNX Runtime, or the PyTorch ONNX runner on a GPU."""
        from ghost_engine.runtime.onnx_sessions import open_onnx

        return open_onnx(Path(path), self.device)

    def generator_runtime(self, network: str, requested: str) -> str:
        """The runtime a generator runs with: `requested`, or for "auto" the faster one
        measured for this device (`ghost_engine.runtime.defaults`)."""
        return requested if requested != "auto" else default_runtime(network, self.device)

    def generator(
        self,
        module: torch.nn.Module | None,
        batch_size: int,
        *,
        onnx_file: Path | None = None,
    ) -> GeneratorRunner:
        """The generator on this device: a PyTorch module, an exported ONNX file run by
        ONNX Runtime (`onnx_file`), or neither (the passthrough generator).

        On the CPU, ONNX Runtime takes at most `CPU_ONNX_GENERATOR_FACES` faces a call
        (the pipeline still batches `batch_size` frames).
        """
        from ghost_engine.face.generator import GeneratorRunner

        if onnx_file is not None:
            from ghost_engine.runtime.onnx_generator import OnnxGenerator

            step = batch_size if is_gpu(self.device) else min(batch_size, CPU_ONNX_GENERATOR_FACES)
            return GeneratorRunner(OnnxGenerator(onnx_file, self.device), self.device, step)
        return GeneratorRunner(module, self.device, batch_size)

    def arcface(self, module: torch.nn.Module, batch_size: int) -> ArcFaceRecognizer:
        """ArcFace (the identity encoder, and a recogniser for matching)."""
        from ghost_engine.face.recognizers import ArcFaceRecognizer

        return ArcFaceRecognizer(module, self.device, batch_size)

    def enhancer(self, module: LIPSPADEGenerator, mode: str, blend: float) -> FaceEnhancer:
        """The face-renovation network, folded and frozen for inference."""
        from ghost_engine.face.enhance import FaceEnhancer

        return FaceEnhancer(module, mode=mode, blend=blend, device=self.device)
