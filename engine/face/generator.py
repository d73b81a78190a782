"""Running the AEI-Net generator on aligned crops (or passing the crops through)."""

from __future__ import annotations

import numpy as np
import torch

from ghost_engine.face.geometry import generator_input, generator_output


class GeneratorRunner:
    """(N, 224, 224, 3) uint8 target crops + (N, 512) z_id -> (N, 224, 224, 3) uint8 swaps.

    With `module=None` it is the passthrough generator: the swap is the crop itself, so
    every other stage (masks, paste-back) can be checked on real frames without weights.
    """

    def __init__(
        self, module: torch.nn.Module | None, device: str = "cpu", batch_size: int = 8
    ) -> None:
        self.module = None if module is None else module.to(device).eval()
        self.device = device
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray, z_ids: np.ndarray | None) -> np.ndarray:
        crops = np.asarray(crops)
        if self.module is None or len(crops) == 0:
            return crops.copy()
        out = []
        for i in range(0, len(crops), self.batch_size):
            xt = torch.from_numpy(generator_input(crops[i : i + self.batch_size])).to(self.device)
            z = torch.from_numpy(np.asarray(z_ids[i : i + self.batch_size], np.float32)).to(
                self.device
            )
            y, _ = self.module(xt, z)
            out.append(generator_output(y.float().cpu().numpy()))
        return np.concatenate(out)
