"""The default face path end to end, as a user runs it: SCRFD -> ArcFace -> the GHOST
generator on ONNX Runtime -> 2d106det -> mask -> paste, every model from the store.

The model files are the published layouts with constructed weights (`model_files.py`):
SCRFD "finds" the face dlib finds in nggyup.mp4, 2d106det returns one fixed face shape,
the generator and ArcFace carry fill-rule weights. They go into a temporary store through
`ghost-engine models import` with a manifest of their own hashes
(`$GHOST_ENGINE_MODEL_MANIFEST`); the packaged manifest, which pins the published hashes,
refuses them. Each run is the real command in a child process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import onnxruntime
import pytest
import torch
from model_files import (
    CLIP,
    CLIP_END_S,
    CLIP_LETTERBOX_SCALE,
    CLIP_START_S,
    DEFAULT_MODELS,
    FACE_BOX_720P,
    FACE_POINTS_720P,
    FACE_STRIDE,
    MODEL_FILES,
    SCRFD_ANCHORS,
    SCRFD_SIZE,
    SCRFD_STRIDES,
    face_points_106,
    sha256,
    write_model_files,
    write_own_manifest,
)

from ghost_engine.face.landmarks106 import Landmarks106
from ghost_engine.face.scrfd import ScrfdDetector
from ghost_engine.store import ModelStore, load_manifest
from ghost_engine.store.model_store import MANIFEST_ENV
from ghost_engine.store.structure import check_onnx

pytestmark = [pytest.mark.slow, pytest.mark.media]

ONNX_MODELS = ("scrfd_10g_bnkps", "landmarks_2d106", "glintr100")
# every step of the default path that must take time (enhance is off by default)
DEFAULT_STEPS = ("detect", "align", "identity", "generator", "landmarks", "mask", "paste")
SOURCE_PHOTO = Path("faces") / "mark.jpg"


@dataclass(frozen=True)
class MadeModels:
    """The made model files (name -> path) and the manifest stating their hashes."""

    files: dict[str, Path]
    manifest: Path


@dataclass(frozen=True)
class InstalledStore:
    """A model store the made files were imported into, and what the import printed."""

    root: Path
    import_output: str


def _cli(*args: object, manifest: Path | None) -> subprocess.CompletedProcess:
    """`ghost-engine ARGS` in a child process, with `manifest` as the own manifest (or
    none: the packaged one)."""
    env = {k: v for k, v in os.environ.items() if k != MANIFEST_ENV}
    if manifest is not None:
        env[MANIFEST_ENV] = str(manifest)
    return subprocess.run(
        [sys.executable, "-m", "ghost_engine", *map(str, args)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MadeModels]:
    """The five model files, made once per session under the pytest tmp dir (and removed
    after it: they are 1 GB)."""
    root = tmp_path_factory.mktemp("made-models")
    files = write_model_files(root / "files")
    yield MadeModels(files, write_own_manifest(files, root / "own-models.json"))
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def store(made: MadeModels, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InstalledStore]:
    """A store holding every made file, installed by `ghost-engine models import` (removed
    after the session: with the converted copies and the generator's ONNX, 3 GB)."""
    root = tmp_path_factory.mktemp("store")
    folder = next(iter(made.files.values())).parent
    done = _cli("models", "import", folder, "--models-dir", root, manifest=made.manifest)
    assert done.returncode == 0, done.stderr
    yield InstalledStore(root, done.stdout)
    shutil.rmtree(root, ignore_errors=True)


def _clip_frames(path: Path, start_s: float = 0.0, end_s: float = float("inf")) -> list:
    """RGB frames of `path` with start_s <= time < end_s, decoded by PyAV."""
    with av.open(str(path)) as container:
        return [
            frame.to_ndarray(format="rgb24")
            for frame in container.decode(container.streams.video[0])
            if start_s - 1e-6 <= frame.time < end_s - 1e-6
        ]


def _audio_seconds(path: Path) -> float:
    """Seconds of sound in `path`'s first audio stream, from its decoded samples."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return sum(frame.samples for frame in container.decode(stream)) / stream.rate


def test_made_files_have_the_published_layouts(made: MadeModels, golden: Path) -> None:
    manifest = load_manifest()
    for name in ONNX_MODELS:  # inputs, outputs, ranks and fixed sizes of the published file
        check_onnx(made.files[name], manifest.entry(name).signature, label=name)
    for name in ("G_unet_2blocks", "arcface_iresnet100"):  # the official keys and shapes
        official = json.loads((golden / f"{name}.manifest.json").read_text())["state_dict"]
        state = torch.load(made.files[name], weights_only=True)
        assert [(k, list(v.shape)) for k, v in state.items()] == [
            (k, shape) for k, shape, _ in official
        ]
    assert {name: path.name for name, path in made.files.items()} == MODEL_FILES
    assert all(manifest.entry(name).file == file for name, file in MODEL_FILES.items())


def test_made_scrfd_scores_one_anchor_that_decodes_to_the_clip_face(
    made: MadeModels, media: Path
) -> None:
    session = onnxruntime.InferenceSession(
        str(made.files["scrfd_10g_bnkps"]), providers=["CPUExecutionProvider"]
    )
    blob = np.random.default_rng(0).uniform(-1, 1, (1, 3, SCRFD_SIZE, SCRFD_SIZE))
    outs = session.run(None, {"input.1": blob.astype(np.float32)})
    levels = len(SCRFD_STRIDES)
    hits = [(i, np.flatnonzero(outs[i] >= 0.6)) for i in range(levels)]
    assert [len(found) for _, found in hits] == [0, 1, 0]  # one candidate, at stride 16
    level = SCRFD_STRIDES.index(FACE_STRIDE)
    (anchor,) = hits[level][1]
    side = SCRFD_SIZE // FACE_STRIDE
    cell = anchor // SCRFD_ANCHORS
    centre = np.array([cell % side, cell // side], np.float64) * FACE_STRIDE
    # SCRFD's distance decoding, written out: box = centre -/+ distances, points = centre +
    # offsets, both in units of the stride
    dist = outs[levels + level][anchor] * FACE_STRIDE
    box = np.r_[centre - dist[:2], centre + dist[2:]]
    points = centre + outs[2 * levels + level][anchor].reshape(5, 2) * FACE_STRIDE
    np.testing.assert_allclose(box, np.multiply(FACE_BOX_720P, CLIP_LETTERBOX_SCALE), atol=1e-3)
    np.testing.assert_allclose(
        points, np.multiply(FACE_POINTS_720P, CLIP_LETTERBOX_SCALE), atol=1e-3
    )
    # and the engine's detector finds that face on a real frame of the clip
    frame = _clip_frames(media / CLIP, CLIP_START_S, CLIP_START_S + 0.01)[0]
    (face,) = ScrfdDetector(session)([frame])[0]
    np.testing.assert_allclose(face.box, FACE_BOX_720P, atol=1e-2)
    np.testing.assert_allclose(face.kps, FACE_POINTS_720P, atol=1e-2)


def test_made_landmarks_give_the_fixed_face_shape(made: MadeModels) -> None:
    session = onnxruntime.InferenceSession(
        str(made.files["landmarks_2d106"]), providers=["CPUExecutionProvider"]
    )
    crops = np.random.default_rng(1).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    blob = np.random.default_rng(2).uniform(0, 255, (3, 3, 192, 192)).astype(np.float32)
    (raw,) = session.run(None, {"data": blob})
    # GHOST's decoding: (-1, 1) on the 192 input, which holds the 224 crop at 4/7 + 32
    decoded = ((raw.reshape(3, 106, 2) + 1) * 96 - 32) * 7 / 4
    shape = face_points_106()
    np.testing.assert_allclose(decoded, np.broadcast_to(shape, decoded.shape), atol=1e-3)
    np.testing.assert_allclose(Landmarks106(session)(crops), decoded, atol=1e-3)
    # a face: brows above eyes above the nose tip above the mouth above the chin
    brow, eye, nose, mouth, chin = shape[[49, 104]], shape[[38, 88]], shape[86], shape[52], shape[0]
    assert brow[:, 1].max() < eye[:, 1].min() < nose[1] < mouth[1] < chin[1]


def test_the_packaged_manifest_refuses_the_made_onnx_files(
    made: MadeModels, tmp_path: Path
) -> None:
    """The published hashes (and sizes) stay pinned: only an own manifest admits them."""
    offered = tmp_path / "offered"
    offered.mkdir()
    for name in ONNX_MODELS:
        shutil.copy(made.files[name], offered / made.files[name].name)
    root = tmp_path / "store"
    done = _cli("models", "import", offered, "--models-dir", root, manifest=None)
    assert done.returncode != 0
    for name in ONNX_MODELS:
        assert f"{name}: FAILED" in done.stderr
        assert not (root / made.files[name].name).exists()
    assert "not the published file" in done.stderr


def test_a_store_reads_its_manifest_from_the_environment(
    made: MadeModels, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(MANIFEST_ENV, raising=False)
    packaged = ModelStore(tmp_path)
    monkeypatch.setenv(MANIFEST_ENV, str(made.manifest))
    own = ModelStore(tmp_path)
    for name in DEFAULT_MODELS:
        assert own.entry(name).sha256 == sha256(made.files[name])
    assert own.manifest.source == str(made.manifest)
    assert packaged.entry("scrfd_10g_bnkps").sha256 != own.entry("scrfd_10g_bnkps").sha256
    # a manifest given in code still wins over the variable
    assert ModelStore(tmp_path, manifest=packaged.manifest).manifest is packaged.manifest


def test_models_import_installs_every_made_file_under_the_own_manifest(
    made: MadeModels, store: InstalledStore
) -> None:
    for name, path in made.files.items():
        assert f"{name}: imported as {store.root / path.name}" in store.import_output
        assert sha256(store.root / path.name) == sha256(path)


def _run(media: Path, store: Path, out: Path, *extra: object, manifest: Path | None):
    return _cli(
        "run",
        media / CLIP,
        "-s",
        media / SOURCE_PHOTO,
        "-o",
        out,
        "--start",
        CLIP_START_S,
        "--end",
        CLIP_END_S,
        "--models-dir",
        store,
        "--json",
        out.with_suffix(".json"),
        "-q",
        *extra,
        manifest=manifest,
    )


def test_the_default_run_uses_every_default_model(
    made: MadeModels, store: InstalledStore, media: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    done = _run(media, store.root, out, manifest=made.manifest)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.with_suffix(".json").read_text())
    models = report["settings"]["models"]
    # each default model came from the store, as the very file made here
    assert {n: models["files"].get(n) for n in DEFAULT_MODELS} == {
        n: f"sha256:{sha256(made.files[n])}" for n in DEFAULT_MODELS
    }
    assert models["generator_runtime"] == "onnxruntime"
    seconds = report["swap_seconds"]
    assert {step: seconds.get(step, 0) > 0 for step in DEFAULT_STEPS} == dict.fromkeys(
        DEFAULT_STEPS, True
    )
    source = _clip_frames(media / CLIP, CLIP_START_S, CLIP_END_S)
    output = _clip_frames(out)
    assert report["frames"] == len(output) == len(source) == 15
    assert report["frames_with_faces"] == len(source)
    assert abs(_audio_seconds(out) - (CLIP_END_S - CLIP_START_S)) < 0.05
    # the generated face is pasted where the face is, and only there
    x1, y1, x2, y2 = (int(v) for v in FACE_BOX_720P)
    for before, after in zip(source, output, strict=True):
        diff = np.abs(before.astype(np.float32) - after).mean(-1)
        away = np.ones(diff.shape, bool)
        away[y1 - 60 : y2 + 60, x1 - 60 : x2 + 60] = False
        assert diff[y1:y2, x1:x2].mean() > 20  # measured: about 90 (of 255)
        assert diff[away].mean() < 3  # measured: about 1 (the encoder's loss)


def test_without_the_own_manifest_a_run_leaves_the_made_files_unused(
    store: InstalledStore, media: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.mp4"
    done = _run(media, store.root, out, manifest=None)
    assert done.returncode != 0
    assert "installed under another manifest" in done.stderr
    assert "scrfd_10g_bnkps" in done.stderr
    assert not out.exists()
    assert (store.root / MODEL_FILES["scrfd_10g_bnkps"]).is_file()  # left in place


def test_a_missing_default_model_stops_the_run(
    made: MadeModels, store: InstalledStore, media: Path, tmp_path: Path
) -> None:
    partial = tmp_path / "store"
    partial.mkdir()
    for path in store.root.iterdir():
        if path.is_file() and not path.name.startswith("G_unet_2blocks."):
            os.link(path, partial / path.name)  # the same verified files, minus the generator
    out = tmp_path / "out.mp4"
    try:
        done = _run(media, partial, out, manifest=made.manifest)
    finally:
        shutil.rmtree(partial)  # the links would keep 500 MB alive after the session
    assert done.returncode == 5
    assert "missing model files" in done.stderr and "G_unet_2blocks" in done.stderr
    assert not out.exists()


def test_an_image_run_reports_the_default_models(
    made: MadeModels, store: InstalledStore, media: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.png"
    done = _cli(
        "run",
        media / "faces" / "beckham.jpg",
        "-s",
        media / SOURCE_PHOTO,
        "-o",
        out,
        "--models-dir",
        store.root,
        "--json",
        tmp_path / "report.json",
        "-q",
        manifest=made.manifest,
    )
    assert done.returncode == 0, done.stderr
    models = json.loads((tmp_path / "report.json").read_text())["settings"]["models"]
    assert sorted(models["files"]) == sorted(DEFAULT_MODELS)
    assert models["generator_runtime"] == "onnxruntime"
