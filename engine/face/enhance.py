"""Face renovation (GHOST's super-resolution) on the generator's 256 faces, batch by batch.

GHOST's swaps are softer than the video around them, so the paper runs its LIP-SPADE
renovation network (`10_net_G.pth`) on every generated face before masking and
paste-back. `FaceEnhancer` does that on the generator's own output batches, on the
generator's device, without a round trip through 8-bit pixels:

- input: the generator output (N, 3, 256, 256) in [-1, 1]; the network reads faces in
  [0, 1], so it gets `clamp(y * 0.5 + 0.5, 0, 1)` (GHOST feeds the uint8 swap through
  `ToTensor`, the same range);
- output: GHOST reads the tanh output as [0, 1] pixels (`clamp(y * 255, 0, 255)`), so
  the renovated face is `clamp(sr, 0, 1)`, mixed with the unenhanced face by `blend`
  and handed back in [-1, 1] so the generator's pixel conversion applies unchanged.

Modes (see `ghost_engine.networks.lipspade.BN_MODES`): "per_face" normalises each face
by its own statistics, so a face's result never depends on the faces sharing its batch
(the stream's batches change with how many faces each frame has); "official" uses the
statistics of the whole batch, as GHOST's inference does (it runs the network in
training mode), and gives the published results for the batch it is handed.
"""

from __future__ import annotations

import copy
from typing import cast

import torch

from ghost_engine.errors import UserInputError
from ghost_engine.face.swap_config import ENHANCE_MODES
from ghost_engine.networks.lipspade import BNMode, LIPSPADEGenerator, fold_spectral_norm
from ghost_engine.runtime.devices import synchronize

__all__ = ["ENHANCE_MODES", "FaceEnhancer", "enhance_input", "synchronize"]


def enhance_input(y: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> the renovation network's input in [0, 1]."""
    return (y * 0.5 + 0.5).clamp(0.0, 1.0)


class FaceEnhancer:
    """(N, 3, H, W) faces in [-1, 1] -> renovated faces in [-1, 1], same shape and device.

    The module is copied, switched to `mode` with its state frozen (the same input always
    gives the same output) and its spectral norms folded into plain convolutions: the
    folded weights are exactly what the next call would compute, without a power
    iteration per call. Not thread-safe only in the sense that torch modules are not:
    one stream per enhancer.
    """

    def __init__(
        self,
        module: LIPSPADEGenerator,
        *,
        mode: str = "per_face",
        blend: float = 1.0,
        device: str = "cpu",
    ) -> None:
        if mode not in ENHANCE_MODES:
            raise UserInputError(
                f"enhance mode must be one of {', '.join(ENHANCE_MODES)}; got {mode!r}"
            )
        if not 0.0 <= blend <= 1.0:
            raise UserInputError(f"enhance blend must be between 0 and 1; got {blend}")
        net = copy.deepcopy(module)
        net.bn_mode = cast(BNMode, mode)  # one of ENHANCE_MODES, checked above
        net.update_state = False
        self.module = fold_spectral_norm(net).to(device).eval()
        self.mode = mode
        self.blend = float(blend)
        self.device = device
        self.dtype = next(self.module.parameters()).dtype

    @torch.inference_mode()
    def __call__(self, y: torch.Tensor) -> torch.Tensor:
        y = y.to(self.device, self.dtype)
        if self.blend == 0.0:
            return y.clone()
        x = enhance_input(y)
        sr = self.module(x).clamp(0.0, 1.0)
        # lerp returns `sr` itself at weight 1 (not x + (sr - x), which rounds)
        out = torch.lerp(x, sr, self.blend) * 2.0 - 1.0
        synchronize(self.device)
        return out
