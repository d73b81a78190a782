"""Every set of allowed values, defined once.

Configs validate against these tuples (with `check_choice`) and the command line offers
them, so adding a choice is one edit and the CLI, the configs and their error messages
cannot disagree. Only names live here (the devices and the inference runtimes that exist
are the runtime package's, re-exported), so a command can build its options without
loading the engine. The order of a tuple is the order users see.
"""

from __future__ import annotations

from ghost_engine.errors import UserInputError
from ghost_engine.runtime.defaults import RUNTIME_NAMES
from ghost_engine.runtime.devices import DEVICES, TRAIN_DEVICES

__all__ = [
    "BENCH_RUNTIMES",
    "CAUSAL_SMOOTHING",
    "CODECS",
    "DEFAULT_PACK",
    "DETECTORS",
    "DEVICES",
    "ENHANCE_MODES",
    "ENHANCE_MODE_FLAGS",
    "EXPORT_FORMATS",
    "EXPORT_PRECISIONS",
    "GENERATORS",
    "GENERATOR_BLOCKS",
    "MASK_MODES",
    "PROGRESS_MODES",
    "RECOGNIZERS",
    "RUNTIMES",
    "SMOOTHING",
    "SR_BN_MODES",
    "STREAM_SCHEMES",
    "TRAIN_DEVICES",
    "TRT_TYPINGS",
    "WEBCAM_OUTPUTS",
    "check_choice",
    "enhance_mode_flag",
    "enhance_mode_from_flag",
]


def check_choice(option: str, value: object, allowed: tuple, message: str) -> None:
    """Refuse `value` unless it is one of `allowed`: a UserInputError with `message` (which
    names the choices) and the option, the value and the choices as its fields."""
    if value not in allowed:
        raise UserInputError(message, option=option, value=value, allowed=allowed)


# -- the face swap (SwapConfig; the options `run` and `webcam` share) -------------------
GENERATORS = ("ghost", "random", "passthrough")
GENERATOR_BLOCKS = (1, 2, 3)  # the published G_unet_<N>blocks checkpoints
DETECTORS = ("auto", "scrfd", "dlib")
RECOGNIZERS = ("auto", "arcface", "glintr100", "dlib")
SMOOTHING = ("window", "ghost", "ema", "none")
CAUSAL_SMOOTHING = ("ema", "none")  # live input: no look-ahead, so no "window"
MASK_MODES = ("ghost", "adaptive")
ENHANCE_MODES = ("per_face", "official")
RUNTIMES = ("auto", "torch", "onnxruntime")


def enhance_mode_flag(mode: str) -> str:
    """The CLI spelling of an enhance mode: `per_face` -> `per-face` (flags use hyphens)."""
    return mode.replace("_", "-")


def enhance_mode_from_flag(flag: str) -> str:
    """The config spelling of an `--enhance-mode` value: `per-face` -> `per_face`."""
    return flag.replace("-", "_")


ENHANCE_MODE_FLAGS = tuple(enhance_mode_flag(mode) for mode in ENHANCE_MODES)

# -- the output video (`run --codec`) ----------------------------------------------------
CODECS = ("h264", "hevc", "vp9", "av1", "prores", "ffv1")

# -- the run's progress report (`ghost_engine.pipeline.progress`) -----------------------
PROGRESS_MODES = ("auto", "bar", "log", "quiet")

# -- export (`ghost-engine export`) -------------------------------------------------------
EXPORT_FORMATS = ("onnx", "tensorrt")
EXPORT_PRECISIONS = ("fp32", "fp16", "bf16")
TRAIN_PRECISIONS = ("fp32", "fp16", "bf16")  # torch.amp autocast types, or none
SR_BN_MODES = ("official", "per_face", "running")  # ghost_engine.networks.lipspade.BN_MODES
TRT_TYPINGS = ("strong", "weak")  # precision from the ONNX, or TensorRT 10 builder flags

# -- the model store (`ghost-engine models`) ---------------------------------------------
DEFAULT_PACK = "default"  # the pack `run` needs (the packs themselves are manifest data)

# -- live swapping (`ghost-engine webcam --output`) --------------------------------------
WEBCAM_OUTPUTS = ("window", "virtual-camera", "none")  # besides a video file or a stream
# stream URL scheme -> the container FFmpeg muxes it with
STREAM_FORMATS = {"rtsp": "rtsp", "rtmp": "flv", "srt": "mpegts", "udp": "mpegts"}
STREAM_SCHEMES = tuple(STREAM_FORMATS)

# -- benchmarks (`ghost-engine bench`) -----------------------------------------------------
BENCH_RUNTIMES = RUNTIME_NAMES  # the generator sweep can time every runtime there is

# -- damaged input (`run --on-damage`): finish with what decoded and say so, or refuse ----
ON_DAMAGE = ("warn", "fail")

# -- x264 and x265 presets (`run --preset`), fastest first ---------------------------------
ENCODER_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
