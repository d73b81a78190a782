"""Choosing and loading the face models a `SwapConfig` asks for.

The all-dlib setup (detector and recogniser "dlib", generator "passthrough" or
"random") is fully offline and never opens the model store; everything else asks the
store, which raises `ModelMissingError` naming the files and the command that gets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ghost_engine.errors import InputFileNotFoundError, NoFaceError, UnsupportedMediaError
from ghost_engine.face.enhance import FaceEnhancer
from ghost_engine.face.generator import GeneratorRunner
from ghost_engine.face.geometry import align_face, transform_points
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.runtime.onnx_sessions import open_onnx


@dataclass
class FaceModels:
    """Everything the stage runs; `recognizer` (matching), `id_encoder` and `enhancer`
    (face renovation, only with `SwapConfig.enhance`) may be None."""

    detector: Any
    recognizer: Any | None
    id_encoder: Any | None
    generator: GeneratorRunner
    landmarks: Any
    enhancer: FaceEnhancer | None = None


class _LazyStore:
    """Opens the model store only when a model file is needed; asks for every file the
    config needs in one go, so a missing set is reported (or downloaded) all at once."""

    def __init__(self, config: SwapConfig, store: Any | None) -> None:
        self.config = config
        self._store = store
        self._paths: dict[str, Path] = {}

    def get(self) -> Any:
        if self._store is None:
            from ghost_engine.store import ModelStore

            self._store = ModelStore(self.config.models_dir)
        return self._store

    def prefetch(self, names: list[str]) -> None:
        if not names:
            return
        from ghost_engine.store import confirm_on_terminal

        self._paths.update(
            self.get().require(names, download=self.config.download, confirm=confirm_on_terminal)
        )

    def require(self, name: str) -> Path:
        if name not in self._paths:
            self.prefetch([name])
        return self._paths[name]


def dlib_available() -> bool:
    """Whether the offline dlib backend (the `dlib` extra) is installed."""
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("dlib", "face_recognition_models"))


def detector_kind(config: SwapConfig, store: _LazyStore) -> str:
    """ "scrfd" or "dlib" for `config.detector`; "auto" is SCRFD when it is installed, is
    being downloaded (`--download` fetches the published set), or dlib is absent."""
    if config.detector != "auto":
        return config.detector
    if config.download or not dlib_available():
        return "scrfd"
    return "scrfd" if store.get().is_installed("scrfd_10g_bnkps") else "dlib"


def required_models(config: SwapConfig, store: _LazyStore) -> list[str]:
    """Names of the model files `config` cannot run without (auto choices resolved).

    With `download`, the mask landmarks (2d106det) come along with SCRFD, as GHOST
    uses them; without it they are used when present and replaced by dlib's otherwise.
    """
    names = []
    if detector_kind(config, store) == "scrfd":
        names.append("scrfd_10g_bnkps")
        if config.download:
            names.append("landmarks_2d106")
    if config.generator == "ghost":
        names += [f"G_unet_{config.generator_blocks}blocks", "arcface_iresnet100"]
        if config.enhance:
            names.append("sr_lipspade")
    if config.recognizer == "arcface" and not config.all_faces:
        names.append("arcface_iresnet100")
    if config.recognizer == "glintr100" and not config.all_faces:
        names.append("glintr100")
    return list(dict.fromkeys(names))


def _detector(config: SwapConfig, store: _LazyStore) -> Any:
    if detector_kind(config, store) == "scrfd":
        from ghost_engine.face.scrfd import ScrfdDetector

        return ScrfdDetector(open_onnx(store.require("scrfd_10g_bnkps"), config.device))
    from ghost_engine.face.dlib_backend import DlibConfig, DlibDetector

    return DlibDetector(DlibConfig(max_side=config.detect_max_side))


def _arcface(path: Path | None, config: SwapConfig) -> Any:
    from ghost_engine import networks
    from ghost_engine.face.recognizers import ArcFaceRecognizer
    from ghost_engine.networks.fill import fill_module

    if path is None:
        module = fill_module(networks.build("arcface_iresnet100"))
    else:
        module = networks.load("arcface_iresnet100", path)
    return ArcFaceRecognizer(module, config.device, config.batch_size)


def _recognizers(config: SwapConfig, store: _LazyStore) -> tuple[Any | None, Any | None]:
    """(matching recogniser, z_id encoder)."""
    id_encoder = None
    if config.generator == "ghost":
        id_encoder = _arcface(store.require("arcface_iresnet100"), config)
    elif config.generator == "random":
        id_encoder = _arcface(None, config)
    kind = config.recognizer
    if kind == "auto":
        s = store.get()
        kind = next(
            (
                k
                for k, n in (("arcface", "arcface_iresnet100"), ("glintr100", "glintr100"))
                if s.is_installed(n)
            ),
            "dlib",
        )
    if kind == "arcface":
        if config.generator == "ghost":
            return id_encoder, id_encoder
        return _arcface(store.require("arcface_iresnet100"), config), id_encoder
    if kind == "glintr100":
        from ghost_engine.face.recognizers import OnnxRecognizer

        return OnnxRecognizer(open_onnx(store.require("glintr100"), config.device)), id_encoder
    from ghost_engine.face.recognizers import DlibRecognizer

    return DlibRecognizer(), id_encoder


def _generator(config: SwapConfig, store: _LazyStore) -> GeneratorRunner:
    if config.generator == "passthrough":
        return GeneratorRunner(None, config.device, config.batch_size)
    from ghost_engine import networks
    from ghost_engine.networks.fill import fill_module

    name = f"G_unet_{config.generator_blocks}blocks"
    checkpoint = None if config.generator == "random" else store.require(name)
    if generator_runtime(config) == "onnxruntime":
        from ghost_engine.runtime.onnx_generator import OnnxGenerator, cached_onnx

        cache = (config.models_dir or _default_models_dir()) / "onnx"
        onnx_path = cached_onnx(name, checkpoint, cache)
        return GeneratorRunner(
            OnnxGenerator(onnx_path, config.device), config.device, config.batch_size
        )
    if checkpoint is None:
        module = fill_module(networks.build(name))
    else:
        module = networks.load(name, checkpoint)
    return GeneratorRunner(module, config.device, config.batch_size)


def generator_runtime(config: SwapConfig) -> str:
    """The runtime the generator uses: the config's, or the faster one measured for the
    device (`bench/results/cpu_runtimes.json` -> `engine/runtime/runtime_defaults.json`)."""
    if config.runtime != "auto":
        return config.runtime
    from ghost_engine.runtime.defaults import default_runtime

    return default_runtime(f"G_unet_{config.generator_blocks}blocks", config.device)


def _default_models_dir() -> Path:
    from ghost_engine.store import default_models_dir

    return default_models_dir()


def _enhancer(config: SwapConfig, store: _LazyStore) -> FaceEnhancer | None:
    """The renovation network: fill-rule weights beside a "random" generator (same cost,
    no files), else `sr_lipspade` from the store."""
    if not config.enhance:
        return None
    from ghost_engine import networks
    from ghost_engine.networks.fill import fill_module

    if config.generator == "random":
        module = fill_module(networks.build("sr_lipspade"))
    else:
        module = networks.load("sr_lipspade", store.require("sr_lipspade"))
    return FaceEnhancer(
        module, mode=config.enhance_mode, blend=config.enhance_blend, device=config.device
    )


def _landmarks(config: SwapConfig, store: _LazyStore) -> Any:
    offline = config.detector == "dlib" and config.recognizer == "dlib"
    if not offline and store.get().is_installed("landmarks_2d106"):
        from ghost_engine.face.landmarks106 import Landmarks106

        return Landmarks106(open_onnx(store.get().path("landmarks_2d106"), config.device))
    from ghost_engine.face.dlib_backend import DlibLandmarks68

    return DlibLandmarks68()


def build_models(config: SwapConfig, store: Any | None = None) -> FaceModels:
    """Load (or fill) every model the config needs."""
    lazy = _LazyStore(config, store)
    lazy.prefetch(required_models(config, lazy))
    detector = _detector(config, lazy)
    recognizer, id_encoder = _recognizers(config, lazy)
    return FaceModels(
        detector=detector,
        recognizer=None if config.all_faces else recognizer,
        id_encoder=id_encoder,
        generator=_generator(config, lazy),
        landmarks=_landmarks(config, lazy),
        enhancer=_enhancer(config, lazy),
    )


def read_photo(path: Path) -> np.ndarray:
    """An image file as RGB uint8, or a clear error."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"photo not found: {path}; check the path")
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UnsupportedMediaError(
            f"cannot read {path} as an image; use a JPEG, PNG, BMP or WebP photo"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def photo_face(detector: Any, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(224 crop, 5 points in the crop) of the best face of a photo, or NoFaceError."""
    image = read_photo(path)
    faces = detector([image])[0]
    if not faces:
        raise NoFaceError(f"no face found in {path}; use a photo where one face is clearly visible")
    crop = align_face(image, faces[0].kps)
    return crop.image, transform_points(faces[0].kps, crop.matrix)


def person_embeddings(encoder: Any, detector: Any, photos: list[Path]) -> np.ndarray:
    """Mean embedding of one person over several photos."""
    crops, kps = zip(*(photo_face(detector, Path(p)) for p in photos), strict=True)
    return encoder.embed(np.stack(crops), np.stack(kps)).mean(0)
