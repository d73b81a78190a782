"""The golden-vector fill rule: deterministic weights from each parameter's name.

Used to prove weight compatibility against `../shared/golden` and to give benchmarks
real-sized networks with well-scaled random weights when no checkpoint is installed.
"""

from __future__ import annotations

import math
import zlib

import numpy as np
import torch


def fill_value(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The array the fill rule assigns to state-dict entry `name` of `shape`."""
    rng = np.random.default_rng(zlib.crc32(name.encode("utf-8")))
    if name.endswith("num_batches_tracked"):
        return np.zeros(shape, dtype=np.int64)
    if name.endswith("running_var"):
        value = 1 + 0.25 * rng.random(shape)
    elif name.endswith("running_mean"):
        value = 0.1 * rng.standard_normal(shape)
    elif len(shape) >= 2:
        value = rng.standard_normal(shape) / math.sqrt(math.prod(shape[1:]))
    elif name.endswith("weight"):
        value = 1 + 0.1 * rng.standard_normal(shape)
    else:
        value = 0.05 * rng.standard_normal(shape)
    return np.asarray(value, dtype=np.float64).astype(np.float32)


def filled_state_dict(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A state dict for `module` with every entry set by the fill rule."""
    out = {}
    for name, tensor in module.state_dict().items():
        out[name] = torch.from_numpy(fill_value(name, tuple(tensor.shape)))
    return out


def fill_module(module: torch.nn.Module) -> torch.nn.Module:
    """Load fill-rule weights into `module` (strict) and return it."""
    module.load_state_dict(filled_state_dict(module), strict=True)
    return module
