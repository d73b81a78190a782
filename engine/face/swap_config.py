"""The face-swap stage's settings (the run command's face options), frozen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

GENERATORS = ("ghost", "random", "passthrough")
DETECTORS = ("auto", "scrfd", "dlib")
RECOGNIZERS = ("auto", "arcface", "glintr100", "dlib")
SMOOTHING = ("window", "ema", "none")
MASK_MODES = ("ghost", "adaptive")
ENHANCE_MODES = ("per_face", "official")
RUNTIMES = ("auto", "torch", "onnxruntime")


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
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if self.generator_blocks not in (1, 2, 3):
            raise ValueError(f"generator_blocks must be 1, 2 or 3; got {self.generator_blocks}")
        if self.detect_max_side is not None and self.detect_max_side < 64:
            raise ValueError(f"detect_max_side must be at least 64; got {self.detect_max_side}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {self.batch_size}")
        if self.generator_engine is not None and self.device != "cuda":
            raise ValueError(
                "a TensorRT generator engine runs on the CUDA backend only; add --device cuda"
            )
        if not 0.0 <= self.enhance_blend <= 1.0:
            raise ValueError(f"enhance_blend must be between 0 and 1; got {self.enhance_blend}")
