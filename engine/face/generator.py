"""Running the AEI-Net generator on aligned crops (or passing the crops through)."""

from __future__ import annotations

import numpy as np
import torch

from ghost_engine.face.geometry import CROP_SIZE, generator_input, generator_output
from ghost_engine.runtime.devices import synchronize
from ghost_engine.runtime.onnx_generator import OnnxGenerator


class GeneratorRunner:
    """(N, 224, 224, 3) uint8 target crops + (N, 512) z_id -> (N, 224, 224, 3) uint8 swaps.

    With `module=None` it is the passthrough generator: the swap is the crop itself, so
    every other stage (masks, paste-back) can be checked on real frames without weights.
    `generate` and `to_pixels` split the call in two so that a step between them (the
    face enhancer) runs on the generator's own batches, on its device.
    """

    def __init__(
        self,
        module: torch.nn.Module | OnnxGenerator | None,
        device: str = "cpu",
        batch_size: int = 8,
    ) -> None:
        if isinstance(module, torch.nn.Module):
            module = module.to(device).eval()
        self.module = module
        self.device = device
        self.batch_size = batch_size

    @property
    def runtime(self) -> str:
        """ "onnxruntime", "torch" or "none" (passthrough)."""
        if self.module is None:
            return "none"
        return "onnxruntime" if isinstance(self.module, OnnxGenerator) else "torch"

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray, z_ids: np.ndarray | None) -> np.ndarray:
        crops = np.asarray(crops)
        if self.module is None or len(crops) == 0:
            return crops.copy()
        return self.to_pixels(self.generate(crops, z_ids))

    @torch.inference_mode()
    def generate(self, crops: np.ndarray, z_ids: np.ndarray | None) -> list[torch.Tensor]:
        """The generator's outputs, one (n, 3, 256, 256) tensor in [-1, 1] per batch, on
        the device; passthrough gives the crops resized to 256, as the generator sees them.
        """
        crops = np.asarray(crops)
        out = []
        for i in range(0, len(crops), self.batch_size):
            xt = torch.from_numpy(generator_input(crops[i : i + self.batch_size])).to(self.device)
            if self.module is None:
                out.append(xt)
                continue
            if z_ids is None:
                raise ValueError("the generator needs the source identities (z_ids), got None")
            z = torch.from_numpy(np.asarray(z_ids[i : i + self.batch_size], np.float32)).to(
                self.device
            )
            if isinstance(self.module, OnnxGenerator):
                y = torch.from_numpy(self.module(xt.cpu().numpy(), z.cpu().numpy()))
                out.append(y.to(self.device))
                continue
            y, _ = self.module(xt, z)
            out.append(y)
        synchronize(self.device)
        return out

    @staticmethod
    def to_pixels(batches: list[torch.Tensor]) -> np.ndarray:
        """Generator-range batches (see `generate`) -> (N, 224, 224, 3) uint8 RGB."""
        if not batches:
            return np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)
        return np.concatenate([generator_output(y.float().cpu().numpy()) for y in batches])
