"""Run logs: `metrics.jsonl` always, TensorBoard when installed, sample grids as PNG.

Only the main process logs. TensorBoard is optional: without the `tensorboard` package a
run says once how to get it and carries on with the JSONL log, which holds the same
scalars (losses, learning rates, throughput) one line per logged step.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import cv2
import numpy as np
import torch

log = logging.getLogger(__name__)

METRICS_NAME = "metrics.jsonl"


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8 RGB."""
    img = ((x.detach().float().cpu().clamp(-1, 1) * 0.5 + 0.5) * 255).round()
    return img.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def draw_points(img: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A copy of `img` with filled circles (cyan) at `points` (K, 2) in pixels."""
    out = np.ascontiguousarray(img.copy())
    radius = max(1, img.shape[0] // 80)
    for x, y in np.asarray(points, dtype=np.float64):
        cv2.circle(out, (int(round(x)), int(round(y))), radius, (0, 255, 255), -1)
    return out


def image_grid(
    xs: torch.Tensor,
    xt: torch.Tensor,
    y: torch.Tensor,
    eyes_t: np.ndarray | None = None,
    eyes_y: np.ndarray | None = None,
    rows: int = 4,
) -> np.ndarray:
    """One row per sample: Xs | Xt | Y, the eye points (N, 2, 2) drawn on Xt and Y."""
    n = min(rows, xs.shape[0])
    size = xt.shape[-1]
    xs_u8 = to_uint8(torch.nn.functional.interpolate(xs[:n].float(), size=(size, size)))
    xt_u8, y_u8 = to_uint8(xt[:n]), to_uint8(y[:n])
    lines = []
    for i in range(n):
        t_img, y_img = xt_u8[i], y_u8[i]
        if eyes_t is not None and eyes_y is not None:
            t_img, y_img = draw_points(t_img, eyes_t[i]), draw_points(y_img, eyes_y[i])
        lines.append(np.concatenate([xs_u8[i], t_img, y_img], axis=1))
    return np.concatenate(lines, axis=0)


def renovation_grid(
    lq: torch.Tensor, fake: torch.Tensor, hq: torch.Tensor, rows: int = 4
) -> np.ndarray:
    """One row per sample: degraded | renovated | clean (each in [0, 1]), RGB uint8."""
    n = min(rows, fake.shape[0])
    cols = [to_uint8(t[:n].float() * 2 - 1) for t in (lq, fake, hq)]
    return np.concatenate([np.concatenate([c[i] for c in cols], axis=1) for i in range(n)])


class RunLog:
    """Scalars and images of one run, written by the main process only."""

    def __init__(self, out_dir: Path, *, enabled: bool, tensorboard: bool) -> None:
        self.out_dir, self.enabled = out_dir, enabled
        self._tb = None
        self._jsonl = None
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self._jsonl = (out_dir / METRICS_NAME).open("a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning(
                    "TensorBoard logging is off: the 'tensorboard' package is not installed "
                    "(pip install tensorboard); scalars still go to %s",
                    out_dir / METRICS_NAME,
                )
            else:
                self._tb = SummaryWriter(str(out_dir / "tensorboard"))

    @property
    def tensorboard_active(self) -> bool:
        return self._tb is not None

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self._jsonl is None:  # not enabled
            return
        self._jsonl.write(json.dumps({"step": step, "time": time.time(), **values}) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, value, step)

    def image(self, step: int, grid: np.ndarray) -> Path | None:
        if not self.enabled:
            return None
        path = self.out_dir / "images" / f"step_{step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        if self._tb is not None:
            self._tb.add_image("samples/Xs_Xt_Y", grid, step, dataformats="HWC")
        return path

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
