"""2d106det landmarks on 224 GHOST crops, as GHOST's mask code calls the network.

GHOST (`Handler.get_without_detection_without_transform`) shrinks the 224 crop by 4/7
into the middle of a 192 canvas (offset 32), feeds raw RGB pixels (the network
normalises inside), and maps the (-1, 1) outputs back: `(p + 1) * 96`, then the inverse
warp to 224 coordinates. The runtime is injected (an onnxruntime-like session).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ghost_engine.face.geometry import transform_points

_TO_192 = np.array([[4.0 / 7.0, 0.0, 32.0], [0.0, 4.0 / 7.0, 32.0]])
_FROM_192 = np.array([[1.75, 0.0, -56.0], [0.0, 1.75, -56.0]])
INPUT_SIZE = 192


class Landmarks106:
    """106 points (N, 106, 2) in 224-crop pixels for a batch of RGB uint8 224 crops."""

    layout = "106"

    def __init__(self, session: Any, mean: float = 0.0, std: float = 1.0) -> None:
        self.session = session
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.fixed_batch = isinstance(inp.shape[0], int) and inp.shape[0] == 1
        self.output_name = session.get_outputs()[-1].name
        self.mean, self.std = mean, std

    @classmethod
    def from_file(cls, path: Path, providers: list[str] | None = None) -> Landmarks106:
        import onnxruntime

        return cls(
            onnxruntime.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        )

    def blob(self, crops: np.ndarray) -> np.ndarray:
        """The network input (N, 3, 192, 192) float32 for 224 crops."""
        small = np.stack(
            [cv2.warpAffine(c, _TO_192, (INPUT_SIZE, INPUT_SIZE), borderValue=0.0) for c in crops]
        )
        x = (small.astype(np.float32) - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (224, 224, 3):
            raise ValueError(f"expected crops (N, 224, 224, 3), got {crops.shape}")
        if len(crops) == 0:
            return np.zeros((0, 106, 2), np.float32)
        blob = self.blob(crops)
        if self.fixed_batch:
            raw = np.concatenate(
                [self.session.run([self.output_name], {self.input_name: b[None]})[0] for b in blob]
            )
        else:
            raw = self.session.run([self.output_name], {self.input_name: blob})[0]
        pred = raw.reshape(len(crops), -1, 2)[:, -106:, :].astype(np.float64)
        pred = (pred + 1.0) * (INPUT_SIZE // 2)
        return transform_points(pred, _FROM_192).astype(np.float32)
