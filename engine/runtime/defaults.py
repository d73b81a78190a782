"""The faster inference runtime per network and device, chosen from measurements.

`bench/cpu_runtimes.py` times PyTorch and ONNX Runtime for every network and writes
`ghost_engine/runtime/runtime_defaults.json`; the face stage asks `default_runtime` which
one to load. Where nothing was measured (a device without numbers yet) the answer is
the eager PyTorch reference, which runs everywhere.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ghost_engine.errors import UserInputError

DEFAULTS_PATH = Path(__file__).resolve().parent / "runtime_defaults.json"
RUNTIME_NAMES = ("torch", "onnxruntime", "tensorrt")
FALLBACK = "torch"
# Networks the engine only has as ONNX files: ONNX Runtime is their one CPU runtime.
ONNX_ONLY = frozenset({"scrfd_10g_bnkps", "landmarks_2d106", "glintr100"})


@lru_cache(maxsize=4)
def load_defaults(path: Path = DEFAULTS_PATH) -> dict:
    """The defaults file as {"devices": {device: {network: runtime}}, ...}."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return {"devices": {}}
    except (OSError, json.JSONDecodeError) as exc:
        raise UserInputError(
            f"the runtime defaults file {path} is unreadable ({exc}); reinstall ghost-engine "
            "or regenerate it with bench/cpu_runtimes.py"
        ) from exc
    for device, table in data.get("devices", {}).items():
        bad = {n: r for n, r in table.items() if r not in RUNTIME_NAMES}
        if bad:
            raise UserInputError(
                f"{path}: unknown runtime(s) {bad} for device {device!r}; "
                f"allowed: {', '.join(RUNTIME_NAMES)}"
            )
    return data


def default_runtime(network: str, device: str, *, path: Path = DEFAULTS_PATH) -> str:
    """'torch' or 'onnxruntime' (or 'tensorrt'): the measured faster runtime for
    `network` (a registry name such as 'G_unet_2blocks', or 'scrfd_10g_bnkps') on
    `device` ('cpu' or 'cuda'); where nothing was measured, 'onnxruntime' for the
    ONNX-only networks and 'torch' for the rest."""
    if device not in ("cpu", "cuda"):
        raise UserInputError(f"device must be 'cpu' or 'cuda', got {device!r}")
    table = load_defaults(Path(path)).get("devices", {}).get(device, {})
    if network in table:
        return table[network]
    return "onnxruntime" if network in ONNX_ONLY else FALLBACK
