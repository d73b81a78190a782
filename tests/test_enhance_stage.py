"""The face-renovation step of the swap stage: batch independence, golden parity, blend.

The network itself (weights, BN modes, folding) is tested in test_lipspade.py; here the
enhancer and the stage around it. The full network costs 366 GFLOP per 256 face (several
seconds each on 2 CPU cores), so the batching checks use a narrow LIP-SPADE (ngf 4, NOT
the official layout) on real faces at 128 pixels (the stage at its 256), and only the
golden parity and the end-to-end run use the full network.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from test_video_fixtures import decode_all, first_frames

from ghost_engine.backend.host_ops import HostImageOps
from ghost_engine.errors import UserInputError
from ghost_engine.face import analysis, synthesis
from ghost_engine.face.dlib_backend import DlibDetector, DlibLandmarks68
from ghost_engine.face.enhance import FaceEnhancer, enhance_input
from ghost_engine.face.generator import GeneratorRunner
from ghost_engine.face.stage import SwapStage
from ghost_engine.face.swap_config import SwapConfig
from ghost_engine.interfaces import PassStage
from ghost_engine.networks import build
from ghost_engine.networks.fill import fill_module, fill_value
from ghost_engine.networks.lipspade import LIPSPADEConfig, LIPSPADEGenerator
from ghost_engine.pipeline.face_models import FaceModels
from ghost_engine.pipeline.swap import assemble_stage, build_swap_stage
from ghost_engine.types import Frame
from ghost_engine.video.encode import EncodeSettings

STEPS = (*analysis.STEPS, *synthesis.STEPS)
NARROW = LIPSPADEConfig(ngf=4, spade_hidden=8)  # not the official layout: cheap


def _narrow(dtype: torch.dtype = torch.float32) -> LIPSPADEGenerator:
    torch.manual_seed(0)
    return fill_module(LIPSPADEGenerator(NARROW)).to(dtype)


@pytest.fixture(scope="module")
def faces(media: Path) -> torch.Tensor:
    """Three real aligned faces as generator output, (3, 3, 128, 128) in [-1, 1]."""
    out = []
    for i in (1, 2, 3):
        bgr = cv2.imread(str(media / "aligned" / f"target{i}.png"))
        assert bgr is not None
        rgb = cv2.cvtColor(cv2.resize(bgr, (128, 128)), cv2.COLOR_BGR2RGB)
        out.append(torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1)
    return torch.stack(out)


@pytest.mark.slow  # about 5 s
def test_per_face_result_does_not_depend_on_the_batch(faces) -> None:
    """float64: exactly the same arithmetic; float32: only the convolution kernels the
    CPU picks per batch size differ (rounding), and the 8-bit faces agree."""
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        enhancer = FaceEnhancer(_narrow(dtype), mode="per_face")
        batched = enhancer(faces.to(dtype))
        for i in range(len(faces)):
            alone = enhancer(faces[i : i + 1].to(dtype))
            assert float((batched[i : i + 1] - alone).abs().max()) < tol
        if dtype == torch.float32:
            split = GeneratorRunner.to_pixels([enhancer(faces[:1]), enhancer(faces[1:])])
            whole = GeneratorRunner.to_pixels([batched])
            diff = np.abs(split.astype(np.int16) - whole)
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-2


def _small(faces: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(faces.double(), size=(64, 64), mode="area")


@pytest.mark.slow  # float64 convolutions: seconds on a busy machine
def test_official_mode_depends_on_the_batch_and_equals_per_face_alone(faces) -> None:
    official = FaceEnhancer(_narrow(torch.float64), mode="official")
    per_face = FaceEnhancer(_narrow(torch.float64), mode="per_face")
    x = _small(faces)
    alone, batched = official(x[1:2]), official(x)
    assert float((batched[1:2] - alone).abs().max()) > 1e-2
    assert float((per_face(x[1:2]) - alone).abs().max()) < 1e-10


@pytest.mark.slow
def test_official_mode_matches_golden(golden: Path) -> None:
    """The registered network with fill-rule weights, run through the enhancer."""
    io_ = np.load(golden / "sr_lipspade.io.npz")
    x, ref = torch.from_numpy(io_["x"]), torch.from_numpy(io_["y_train_mode"])
    enhancer = FaceEnhancer(fill_module(build("sr_lipspade")), mode="official")
    torch.set_num_threads(max(torch.get_num_threads(), 2))
    out = enhance_input(enhancer(x * 2 - 1))  # generator range in, [0, 1] pixels out
    expected = ref.clamp(0, 1)  # GHOST's clamp(y * 255, 0, 255) / 255
    assert float((out - expected).abs().max()) < 1e-3
    assert float((out - expected).norm() / expected.norm()) < 1e-4


def test_blend_mixes_enhanced_and_plain_faces(faces) -> None:
    net = _narrow(torch.float64)
    x = _small(faces[:2])
    full = enhance_input(FaceEnhancer(net, blend=1.0)(x))
    none = FaceEnhancer(net, blend=0.0)(x)
    half = enhance_input(FaceEnhancer(net, blend=0.25)(x))
    assert torch.equal(none, x)
    plain = enhance_input(x)
    torch.testing.assert_close(half, 0.75 * plain + 0.25 * full, rtol=0, atol=1e-12)
    assert float((full - plain).abs().mean()) > 0.05  # the network did change the faces


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"enhance_mode": "batch"}, ValueError, "per_face, official"),
        ({"enhance_blend": 1.5}, ValueError, "between 0 and 1"),
        ({"enhance_blend": -0.1}, ValueError, "between 0 and 1"),
    ],
)
def test_bad_settings_name_the_choices(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        SwapConfig(**kwargs)


def test_bad_enhancer_arguments_are_user_errors() -> None:
    with pytest.raises(UserInputError, match="per_face, official"):
        FaceEnhancer(_narrow(), mode="running")
    with pytest.raises(UserInputError, match="between 0 and 1"):
        FaceEnhancer(_narrow(), blend=2.0)


def _stage(mode: str) -> SwapStage:
    models = FaceModels(
        detector=DlibDetector(),
        recognizer=None,
        id_encoder=None,
        generator=GeneratorRunner(None, "cpu", batch_size=8),
        landmarks=DlibLandmarks68(),
        enhancer=FaceEnhancer(_narrow(torch.float64), mode=mode),
    )
    config = SwapConfig(generator="passthrough", all_faces=True, smoothing="none", enhance=True)
    return assemble_stage(config, models, None, None, HostImageOps())


def _run(stage: SwapStage, images: list[np.ndarray], per_call: int) -> list[np.ndarray]:
    frames = [Frame(image=img.copy(), index=i, pts=i) for i, img in enumerate(images)]
    out = []
    for i in range(0, len(frames), per_call):
        out += stage.process(frames[i : i + per_call])
    out += stage.flush()
    return [f.image for f in out]


@pytest.mark.slow
def test_stage_output_does_not_depend_on_batching_in_per_face_mode(media: Path) -> None:
    """dance.mp4 frames one by one (batches of one face) or three at once."""
    images = first_frames(media / "videos" / "dance.mp4", 3)
    alone = _run(_stage("per_face"), images, 1)
    together_stage = _stage("per_face")
    together = _run(together_stage, images, 3)
    changed = 0
    for a, b, src in zip(alone, together, images, strict=True):
        assert np.array_equal(a, b)
        changed += int((a != src).any(axis=2).sum())
    assert changed > 3 * 2000  # the renovated face was pasted into every frame
    seconds = together_stage.timings()
    assert set(seconds) == set(STEPS) and seconds["enhance"] > 0
    # the official mode's statistics mix the faces of a batch: visibly different frames
    official = _run(_stage("official"), images, 3)
    worst = max(
        int(np.abs(o.astype(np.int16) - a).max()) for o, a in zip(official, alone, strict=True)
    )
    assert worst > 8


class _MaskSpy(PassStage):
    """Records, per output frame index, where the swap stage pasted: the union of its
    faces' 224 masks warped back into the frame (as the paste warps them)."""

    name = "mask-spy"

    def __init__(self) -> None:
        self.supports: dict[int, np.ndarray] = {}

    def process(self, frames):
        for f in frames:
            h, w = f.image.shape[:2]
            support = np.zeros((h, w), bool)
            for face in f.meta["faces"]:
                if "mask" not in face:
                    continue  # a face that was not swapped
                full = cv2.warpAffine(
                    np.asarray(face["mask"], np.float32),
                    np.asarray(face["matrix"], np.float64),
                    (w, h),
                    flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                    borderMode=cv2.BORDER_CONSTANT,
                )
                support |= full > 0
            self.supports[f.index] = support
        return frames


@pytest.mark.slow
def test_enhance_runs_end_to_end_on_nggyup_with_random_weights(media: Path, tmp_path) -> None:
    """Random (fill-rule) generator and renovation network on 3 frames of nggyup.mp4, run
    with and without the renovation into lossless files: the enhanced faces differ from
    the plain ones inside the pasted masks, and the frames are bit-identical outside."""
    import ghost_engine

    runs = {}
    for enhance in (True, False):
        config = SwapConfig(
            generator="random",
            runtime="torch",
            detector="dlib",
            recognizer="dlib",
            all_faces=True,
            enhance=enhance,
        )
        stage = build_swap_stage(config, [[media / "faces" / "mark.jpg"]])
        enhancer = stage.synthesis.models.enhancer
        if enhance:
            assert isinstance(enhancer, FaceEnhancer) and enhancer.mode == "per_face"
            key = "head_0.conv_0.bias"  # kept as is by the folding: the fill rule's value
            state = enhancer.module.state_dict()
            assert np.array_equal(state[key].numpy(), fill_value(key, (768,)))
        else:
            assert enhancer is None
        spy = _MaskSpy()
        out = tmp_path / f"enhance-{enhance}.mkv"
        report = ghost_engine.swap_video(
            media / "videos" / "nggyup.mp4",
            media / "faces" / "mark.jpg",
            out,
            config=config,
            encode=EncodeSettings(codec="ffv1"),
            start_s=2.0,
            end_s=2.1,
            progress="quiet",
            stages=[stage, spy],
        )
        assert report.frames == 3 and report.frames_with_faces >= 2
        swap = report.swap_seconds
        assert swap["generator"] > 0
        if enhance:
            assert swap["enhance"] > 0
            rate = report.frames_with_faces / swap["enhance"]
            print(f"enhance: {rate:.3f} faces/s, generator {swap['generator']:.2f} s")
        images, _ = decode_all(out)
        assert len(images) == 3 and images[0].shape == (720, 1280, 3)
        runs[enhance] = (images, [spy.supports[i] for i in sorted(spy.supports)])
    (enhanced, on_masks), (plain, off_masks) = runs[True], runs[False]
    assert len(on_masks) == len(off_masks) == 3
    swapped = 0
    for a, b, on, off in zip(enhanced, plain, on_masks, off_masks, strict=True):
        # the masks follow each run's own swap, so they differ a little: outside both,
        # the two runs wrote the same pixels
        outside = ~(on | off)
        np.testing.assert_array_equal(a[outside], b[outside])
        assert on.any() == off.any()  # the same faces found in the same frames
        if not on.any():
            continue
        swapped += 1
        # inside both: the renovated face, not the plain one (measured on 13000-14000
        # pixels a frame: 99.9-100% of them changed, by 116 levels on average)
        both = on & off
        assert both.sum() > 5000
        changed = (a[both] != b[both]).any(axis=1).mean()
        diff = np.abs(a[both].astype(np.int16) - b[both]).mean()
        assert changed > 0.9 and diff > 20, (changed, diff)
    assert swapped >= 2
