"""Choosing and loading the face models a `SwapConfig` asks for: where models are loaded.

This module decides which files and weights a run needs (asking the model store for
every missing file at once) and hands them to the backend's `SessionOpener`, which puts
each network on its device and runtime. The all-dlib setup (detector and recogniser
"dlib", generator "passthrough" or "random") is fully offline and never opens the
store; everything else asks it, which raises `ModelMissingError` naming the files and
the command that gets them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ghost_engine.backend.sessions import SessionOpener
from ghost_engine.face.analysis import AnalysisModels
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.face.synthesis import SynthesisModels
from ghost_engine.interfaces import Detector, Enhancer, Generator, LandmarkModel, Recognizer

if TYPE_CHECKING:
    import torch

    from ghost_engine.face.stage import SwapStage
    from ghost_engine.networks.lipspade import LIPSPADEGenerator
    from ghost_engine.store import ModelStore


@dataclass
class FaceModels:
    """Everything the face stages run; `recognizer` (matching), `id_encoder` and
    `enhancer` (face renovation, only with `SwapConfig.enhance`) may be None."""

    detector: Detector
    recognizer: Recognizer | None
    id_encoder: Recognizer | None
    generator: Generator
    landmarks: LandmarkModel
    enhancer: Enhancer | None = None
    # model name -> identity of the file loaded (its pinned SHA-256, else size and
    # modification time): what a resume must find unchanged
    files: dict[str, str] = field(default_factory=dict)

    def analysis(self) -> AnalysisModels:
        return AnalysisModels(self.detector, self.recognizer)

    def synthesis(self) -> SynthesisModels:
        return SynthesisModels(self.generator, self.landmarks, self.enhancer)


class _LazyStore:
    """Opens the model store only when a model file is needed; asks for every file the
    config needs in one go, so a missing set is reported (or downloaded) all at once."""

    def __init__(self, config: SwapConfig, store: ModelStore | None) -> None:
        self.config = config
        self._store = store
        self._paths: dict[str, Path] = {}
        self.used: dict[str, Path] = {}

    def get(self) -> ModelStore:
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
        self.used[name] = self._paths[name]
        return self._paths[name]

    def installed(self, name: str) -> Path:
        """The path of an installed optional model (checked with `get().is_installed`)."""
        self.used[name] = self.get().path(name)
        return self.used[name]

    def identities(self) -> dict[str, str]:
        """Every model file handed out, by its pinned hash (else size and mtime)."""
        out = {}
        for name, path in sorted(self.used.items()):
            pinned, _ = self.get().expected_sha256(self.get().entry(name))
            if pinned:
                out[name] = f"sha256:{pinned}"
            else:
                stat = Path(path).stat()
                out[name] = f"size:{stat.st_size}:mtime_ns:{stat.st_mtime_ns}"
        return out


def dlib_available() -> bool:
    """Whether the offline dlib backend (the `dlib` extra) is installed."""
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


class _Loader:
    """Loads each model of one config through one session opener."""

    def __init__(self, config: SwapConfig, sessions: SessionOpener, store: _LazyStore) -> None:
        self.config = config
        self.sessions = sessions
        self.store = store

    def detector(self) -> Detector:
        if detector_kind(self.config, self.store) == "scrfd":
            from ghost_engine.face.scrfd import ScrfdDetector

            return ScrfdDetector(self.sessions.onnx(self.store.require("scrfd_10g_bnkps")))
        from ghost_engine.face.dlib_backend import DlibConfig, DlibDetector

        return DlibDetector(DlibConfig(max_side=self.config.detect_max_side))

    def arcface(self, path: Path | None) -> Recognizer:
        from ghost_engine import networks
        from ghost_engine.networks.fill import fill_module

        if path is None:
            module = fill_module(networks.build("arcface_iresnet100"))
        else:
            module = networks.load("arcface_iresnet100", path)
        return self.sessions.arcface(module, self.config.batch_size)

    def recognizers(self) -> tuple[Recognizer | None, Recognizer | None]:
        """(matching recogniser, z_id encoder).

        Where both are ArcFace, one copy (65 M parameters) serves both: the published
        weights beside the published generator, and the installed ones beside the random
        generator, whose faces mean nothing whichever ArcFace gives their z_id.
        """
        config, store = self.config, self.store
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
        if kind == "arcface" and config.generator in ("ghost", "random"):
            shared = self.arcface(store.require("arcface_iresnet100"))
            return shared, shared
        id_encoder = None
        if config.generator == "ghost":
            id_encoder = self.arcface(store.require("arcface_iresnet100"))
        elif config.generator == "random":
            id_encoder = self.arcface(None)
        if kind == "arcface":
            return self.arcface(store.require("arcface_iresnet100")), id_encoder
        if kind == "glintr100":
            from ghost_engine.face.recognizers import OnnxRecognizer

            session = self.sessions.onnx(store.require("glintr100"))
            return OnnxRecognizer(session), id_encoder
        from ghost_engine.face.recognizers import DlibRecognizer

        return DlibRecognizer(), id_encoder

    def generator(self) -> Generator:
        config = self.config
        if config.generator == "passthrough":
            return self.sessions.generator(None, config.batch_size)
        from ghost_engine import networks
        from ghost_engine.networks.fill import fill_module

        name = f"G_unet_{config.generator_blocks}blocks"
        checkpoint = None if config.generator == "random" else self.store.require(name)
        if self.sessions.generator_runtime(name, config.runtime) == "onnxruntime":
            from ghost_engine.export.onnx_cache import cached_onnx

            cache = (config.models_dir or _default_models_dir()) / "onnx"
            onnx_file = cached_onnx(name, checkpoint, cache)
            return self.sessions.generator(None, config.batch_size, onnx_file=onnx_file)
        module: torch.nn.Module
        if checkpoint is None:
            module = fill_module(networks.build(name))
        else:
            module = networks.load(name, checkpoint)
        return self.sessions.generator(module, config.batch_size)

    def enhancer(self) -> Enhancer | None:
        """The renovation network: fill-rule weights beside a "random" generator (same
        cost, no files), else `sr_lipspade` from the store."""
        config = self.config
        if not config.enhance:
            return None
        from ghost_engine import networks
        from ghost_engine.networks.fill import fill_module

        if config.generator == "random":
            module = fill_module(networks.build("sr_lipspade"))
        else:
            module = networks.load("sr_lipspade", self.store.require("sr_lipspade"))
        lipspade = cast("LIPSPADEGenerator", module)  # what networks builds for sr_lipspade
        return self.sessions.enhancer(lipspade, config.enhance_mode, config.enhance_blend)

    def landmarks(self) -> LandmarkModel:
        config = self.config
        offline = config.detector == "dlib" and config.recognizer == "dlib"
        if not offline and self.store.get().is_installed("landmarks_2d106"):
            from ghost_engine.face.landmarks106 import Landmarks106

            return Landmarks106(self.sessions.onnx(self.store.installed("landmarks_2d106")))
        from ghost_engine.face.dlib_backend import DlibLandmarks68

        return DlibLandmarks68()


def _default_models_dir() -> Path:
    from ghost_engine.store import default_models_dir

    return default_models_dir()


def loaded_models(stage: SwapStage) -> dict[str, Any]:
    """What a swap stage loaded, for the run report's `settings.models`: every model file
    by identity (as the loader recorded it, `FaceModels.files`) and the runtime the
    generator runs on, so a report shows which models a run really used."""
    from ghost_engine.face.generator import GeneratorRunner  # imports torch: only once built

    generator = stage.synthesis.models.generator
    runtime = generator.runtime if isinstance(generator, GeneratorRunner) else "custom"
    return {"files": dict(stage.model_files), "generator_runtime": runtime}


def build_models(
    config: SwapConfig, sessions: SessionOpener, store: ModelStore | None = None
) -> FaceModels:
    """Load (or fill) every model the config needs, on the sessions' device."""
    lazy = _LazyStore(config, store)
    lazy.prefetch(required_models(config, lazy))
    load = _Loader(config, sessions, lazy)
    detector = load.detector()
    recognizer, id_encoder = load.recognizers()
    return FaceModels(
        detector=detector,
        recognizer=None if config.all_faces else recognizer,
        id_encoder=id_encoder,
        generator=load.generator(),
        landmarks=load.landmarks(),
        enhancer=load.enhancer(),
        files=lazy.identities(),
    )


def build_synthesis_models(
    config: SwapConfig, sessions: SessionOpener, store: ModelStore | None = None
) -> tuple[SynthesisModels, dict[str, str]]:
    """Only what synthesis runs (generator, mask landmarks, enhancer) and the identities
    of the files loaded: a synthesis worker of a two-phase run needs no detector or
    recogniser, since the analysis plan holds every face and source identity."""
    lazy = _LazyStore(config, store)
    lazy.prefetch(required_models(config, lazy))
    load = _Loader(config, sessions, lazy)
    models = SynthesisModels(load.generator(), load.landmarks(), load.enhancer())
    return models, lazy.identities()
