"""Training checkpoints that resume exactly, written atomically, plus official-layout weights.

`training.pt` holds everything a run needs to continue bit for bit: G and D weights,
both optimisers, schedulers and grad scalers, the RNG states, the data position, the
accumulated adversarial loss and the resolved config. It contains only tensors and plain
Python values, so it loads with `weights_only=True` (no code runs on load).
`G_latest.pth`/`D_latest.pth` (and per-epoch copies) are bare state dicts in the
official key layout, loadable by `ghost_engine.networks.load` and by the official code.
"""

from __future__ import annotations

import io
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ghost_engine.errors import CheckpointError

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
    """Every RNG a run touches, as tensors and plain values."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached],
        "python": list(random.getstate()[1]) + [random.getstate()[0]],
        "python_gauss": random.getstate()[2],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    py = state["python"]
    random.setstate((py[-1], tuple(py[:-1]), state["python_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(out_dir: Path, state: dict[str, Any]) -> Path:
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
            "delete it to start over or pass resume=false"
        ) from exc


def export_weights(
    out_dir: Path, generator: torch.nn.Module, discriminator: torch.nn.Module, tag: str
) -> tuple[Path, Path]:
    """G_<tag>.pth and D_<tag>.pth: bare state dicts in the official layout."""
    g_path, d_path = out_dir / f"G_{tag}.pth", out_dir / f"D_{tag}.pth"
    write_atomic(g_path, {k: v.detach().cpu() for k, v in generator.state_dict().items()})
    write_atomic(d_path, {k: v.detach().cpu() for k, v in discriminator.state_dict().items()})
    return g_path, d_path
