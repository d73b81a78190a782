"""A training run's state on disk: the resume point and bare weight files, written atomically.

`training.pt` holds everything a run needs to continue bit for bit: G and D weights,
both optimisers, schedulers and grad scalers, every RNG state, the data position (with
whatever the recipe carries between steps) and the resolved config. It contains only
tensors and plain Python values, so it loads with `weights_only=True` (no code runs on
load). Weight files are bare state dicts on the CPU, in the network's own key layout
(the official one for the official networks); the recipes name them.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from ghost_engine.errors import CheckpointError
from ghost_engine.runtime import devices

STATE_NAME = "training.pt"


def write_atomic(path: Path, obj: Any) -> None:
    """torch.save to a temporary file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(buffer.getbuffer())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def rng_state() -> dict[str, Any]:
    """Every RNG a run touches, as tensors and plain values (the GPUs' under `devices.CUDA`,
    where there are GPUs)."""
    # legacy=True: the (kind, keys, pos, has_gauss, cached) tuple, never the dict form
    legacy = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state(legacy=True))
    kind, keys, pos, has_gauss, cached = legacy
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": list(random.getstate()[1]) + [random.getstate()[0]],
        "python_gauss": random.getstate()[2],
    }
    gpu = devices.gpu_rng_state()
    if gpu is not None:
        state[devices.CUDA] = gpu
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what `rng_state` gave (GPU states are ignored where there is no GPU now)."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    py = state["python"]
    random.setstate((py[-1], tuple(py[:-1]), state["python_gauss"]))
    devices.set_gpu_rng_state(state.get(devices.CUDA))


def save_state(out_dir: Path, state: dict[str, Any]) -> Path:
    """Write `state` as the run's resume point (`out_dir/training.pt`), atomically."""
    path = out_dir / STATE_NAME
    write_atomic(path, state)
    return path


def load_state(path: Path) -> dict[str, Any]:
    """A training state written by `save_state` (safe load: tensors and plain values)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds; report them all as one
        raise CheckpointError(
            f"{path}: cannot read the training state ({str(exc).splitlines()[0]}); "
            "delete it to start over or pass resume=false",
            path=path,
        ) from exc


def write_weights(path: Path, module: torch.nn.Module) -> Path:
    """`module`'s state dict, detached and on the CPU, as a bare weight file at `path`."""
    write_atomic(path, {k: v.detach().cpu() for k, v in module.state_dict().items()})
    return path
