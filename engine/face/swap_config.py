"""The face-swap stage's settings (the run command's face options), frozen.

A bad value is the user's to fix, so it raises `UserInputError` naming the CLI flag,
the value and the allowed ones (the choices come from `ghost_engine.choices`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ghost_engine.choices import (
    DETECTORS,
    ENHANCE_MODES,
    GENERATOR_BLOCKS,
    GENERATORS,
    MASK_MODES,
    RECOGNIZERS,
    RUNTIMES,
    SMOOTHING,
    check_choice,
)
from ghost_engine.errors import UserInputError
from ghost_engine.runtime.devices import CUDA, is_gpu


def cli_flag(field: str) -> str:
    """The command-line flag of a SwapConfig field: `mask_mode` -> `--mask-mode`."""
    return "--" + field.replace("_", "-")


@dataclass(frozen=True)
class SwapConfig:
    """How the face-swap stage runs; validated on creation (bad values name the choices).

    generator: "ghost" (the G_unet_<N>blocks checkpoint), "random" (fill-rule weights:
    right architecture and cost, meaningless faces) or "passthrough" (the swap is the
    aligned target crop itself). detector "auto" is SCRFD when its file is installed,
    else dlib; recognizer (matching) "auto" is ArcFace, else glintr100, else dlib.

    enhance: run GHOST's face-renovation network (`sr_lipspade`) on every generated face
    before masking, on the generator's batches (fill-rule weights with generator
    "random"). enhance_mode "per_face" (a face's result does not depend on its batch) or
    "official" (BatchNorm on the batch's statistics, as GHOST's inference);
    enhance_blend mixes the enhanced face (1) with the unenhanced one (0).

    detect_max_side: the dlib detector searches a copy downscaled to this longest side
    (the landmarks still use the full frame); None (default) searches the full frame.
    640 cuts detection work on 720p about 3x but loses small or turned faces (on
    nggyup.mp4 it missed the face in 1 of 24 frames, and in all of 2.0-2.1 s).

    generator_engine: a TensorRT engine of the generator (`ghost-engine export --format
    tensorrt`) that the CUDA backend runs instead of PyTorch (video runs, --device cuda).

    detect_every: the detection budget (`ghost_engine.face.detection_budget`): a
    full-frame detection at least every this many frames, and on scene cuts, when no
    face is tracked, when a track is lost or a new face found, and when the picture
    outside the tracked faces changed by more than `detect_change_threshold` (mean grey
    change, 0-255, of an 80 px block at 720p) from the frame before;
    between them only the regions around the tracked faces are searched, which gives
    the faces a full-frame detection gives there. A face coming in gradually outside the
    tracked ones is found by the next full-frame detection, at most K - 1 frames late.
    1 detects every frame whole; detectors
    that cannot search regions (dlib with upsampling, SCRFD graphs of a fixed input
    size) always do. 10: on nggyup.mp4 with dlib 2.8x less detection time than 1
    (20: 3.1x) with the same faces (bench/results/detection_budget.json).

    runtime: how the generator runs; "auto" takes the faster one measured for the device
    (`ghost_engine.runtime.defaults`: ONNX Runtime on CPUs, PyTorch on CUDA).
    """

    generator: str = "ghost"
    generator_blocks: int = 2
    detector: str = "auto"
    recognizer: str = "auto"
    smoothing: str = "window"
    mask_mode: str = "ghost"
    color_match: bool = False
    all_faces: bool = False
    similarity_threshold: float = 0.15
    batch_size: int = 8
    device: str = "cpu"
    debug_overlay: bool = False
    models_dir: Path | None = None
    download: bool = False
    enhance: bool = False
    enhance_mode: str = "per_face"
    enhance_blend: float = 1.0
    runtime: str = "auto"
    detect_max_side: int | None = None
    generator_engine: Path | None = None
    detect_every: int = 10
    detect_change_threshold: float = 40.0

    def __post_init__(self) -> None:
        for name, allowed in (
            ("generator", GENERATORS),
            ("detector", DETECTORS),
            ("recognizer", RECOGNIZERS),
            ("smoothing", SMOOTHING),
            ("mask_mode", MASK_MODES),
            ("enhance_mode", ENHANCE_MODES),
            ("runtime", RUNTIMES),
        ):
            value = getattr(self, name)
            message = f"{name} must be one of {', '.join(allowed)}; got {value!r}"
            check_choice(cli_flag(name), value, allowed, message)
        blocks = self.generator_blocks
        message = f"generator_blocks must be 1, 2 or 3; got {blocks}"
        check_choice(cli_flag("generator_blocks"), blocks, GENERATOR_BLOCKS, message)
        if self.detect_max_side is not None and self.detect_max_side < 64:
            raise UserInputError(
                f"detect_max_side must be at least 64; got {self.detect_max_side}",
                option=cli_flag("detect_max_side"),
                value=self.detect_max_side,
            )
        if self.detect_every < 1:
            raise UserInputError(
                f"detect_every must be at least 1 (1: a full-frame detection on every "
                f"frame); got {self.detect_every}",
                option=cli_flag("detect_every"),
                value=self.detect_every,
            )
        if not 0.0 < self.detect_change_threshold <= 255.0:
            raise UserInputError(
                "detect_change_threshold must be above 0 and at most 255 (mean grey "
                f"change); got {self.detect_change_threshold}",
                option=cli_flag("detect_change_threshold"),
                value=self.detect_change_threshold,
            )
        if self.batch_size < 1:
            raise UserInputError(
                f"batch_size must be at least 1; got {self.batch_size}",
                option=cli_flag("batch_size"),
                value=self.batch_size,
            )
        if self.generator_engine is not None and not is_gpu(self.device):
            raise UserInputError(
                "a TensorRT generator engine runs on the CUDA backend only; add --device cuda",
                option=cli_flag("device"),
                value=self.device,
                allowed=(CUDA,),
            )
        if not 0.0 <= self.enhance_blend <= 1.0:
            raise UserInputError(
                f"enhance_blend must be between 0 and 1; got {self.enhance_blend}",
                option=cli_flag("enhance_blend"),
                value=self.enhance_blend,
            )
