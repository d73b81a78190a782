"""Identity recognisers: `z_id` for the generator and embeddings for matching faces.

One tiny interface: `embed(crops, kps) -> (N, D)` on 224 GHOST crops (RGB uint8) with
the 5 points in crop coordinates, and `similarity(a, b) -> (N, M)` on a scale where
GHOST's threshold (cosine 0.15) keeps its meaning. Runtimes are injected.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ghost_engine.face.dlib_backend import CROP_BOX_224, dlib_model_path, import_dlib
from ghost_engine.face.geometry import umeyama

# insightface's ArcFace template (112 px), used by the ONNX recognisers (glintr100).
ARCFACE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D) x (M, D) -> (N, M) cosine similarity."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def _check_crops(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1:] != (224, 224, 3) or crops.dtype != np.uint8:
        raise ValueError(f"expected uint8 crops (N, 224, 224, 3), got {crops.shape} {crops.dtype}")
    return crops


def arcface_input(crops: np.ndarray, device: str | torch.device = "cpu") -> torch.Tensor:
    """GHOST's ArcFace input: the 224 crop in [-1, 1], halved to 112 (bilinear,
    align_corners=True)."""
    x = torch.from_numpy(_check_crops(crops)).to(device).permute(0, 3, 1, 2).float()
    x = (x / 255.0 - 0.5) / 0.5
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=True)


class ArcFaceRecognizer:
    """ArcFace iresnet100 (torch, `backbone.pth`): its raw output is GHOST's `z_id`."""

    def __init__(self, module: torch.nn.Module, device: str = "cpu", batch_size: int = 8) -> None:
        self.module = module.to(device).eval()
        self.device = device
        self.batch_size = batch_size

    @torch.inference_mode()
    def embed(self, crops: np.ndarray, kps: np.ndarray | None = None) -> np.ndarray:
        crops = _check_crops(crops)
        out = [
            self.module(arcface_input(crops[i : i + self.batch_size], self.device)).float().cpu()
            for i in range(0, len(crops), self.batch_size)
        ]
        return torch.cat(out).numpy() if out else np.zeros((0, 512), np.float32)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cosine_similarity(a, b)


class OnnxRecognizer:
    """An insightface ONNX recogniser (glintr100): ArcFace-aligned 112 input,
    `(x - 127.5) / 127.5`, RGB. Used for matching (its embedding is not GHOST's z_id)."""

    def __init__(self, session: Any, mean: float = 127.5, std: float = 127.5) -> None:
        self.session = session
        inp = session.get_inputs()[0]
        self.input_name = inp.name
        self.fixed_batch = isinstance(inp.shape[0], int) and inp.shape[0] == 1
        self.output_name = session.get_outputs()[0].name
        self.mean, self.std = mean, std

    def embed(self, crops: np.ndarray, kps: np.ndarray | None = None) -> np.ndarray:
        crops = _check_crops(crops)
        if kps is None:
            raise ValueError("OnnxRecognizer needs the 5 points of each crop")
        chips = np.stack(
            [
                cv2.warpAffine(c, umeyama(k, ARCFACE_112), (112, 112))
                for c, k in zip(crops, kps, strict=True)
            ]
        )
        blob = ((chips.astype(np.float32) - self.mean) / self.std).transpose(0, 3, 1, 2)
        blob = np.ascontiguousarray(blob)
        if self.fixed_batch:
            outs = [
                self.session.run([self.output_name], {self.input_name: b[None]})[0] for b in blob
            ]
            return np.concatenate(outs)
        return self.session.run([self.output_name], {self.input_name: blob})[0]

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cosine_similarity(a, b)


class DlibRecognizer:
    """dlib's 128-d ResNet descriptor, for matching without model downloads.

    Its similarity is `1 - distance / 0.75`, so GHOST's default threshold 0.15 means a
    descriptor distance under 0.64, close to dlib's own same-person rule (0.6).
    """

    def __init__(self, box: tuple[int, int, int, int] = CROP_BOX_224) -> None:
        dlib = import_dlib()
        self._predictor = dlib.shape_predictor(
            str(dlib_model_path("shape_predictor_68_face_landmarks.dat"))
        )
        self._net = dlib.face_recognition_model_v1(
            str(dlib_model_path("dlib_face_recognition_resnet_model_v1.dat"))
        )
        self._rect = dlib.rectangle(*box)

    def embed(self, crops: np.ndarray, kps: np.ndarray | None = None) -> np.ndarray:
        crops = _check_crops(crops)
        out = []
        for crop in crops:
            crop = np.ascontiguousarray(crop)
            shape = self._predictor(crop, self._rect)
            out.append(np.asarray(self._net.compute_face_descriptor(crop, shape)))
        return np.stack(out).astype(np.float32) if out else np.zeros((0, 128), np.float32)

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        dist = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
        return 1.0 - dist / 0.75
