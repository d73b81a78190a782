"""Face-swap options shared by `run` and `webcam`, declared once so both stay in step.

Each option maps one to one onto a `SwapConfig` field; `swap_config_fields` does the
mapping (and the CLI spelling `per-face` -> `per_face`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from ghost_engine.choices import (
    DETECTORS,
    ENHANCE_MODE_FLAGS,
    GENERATORS,
    MASK_MODES,
    RECOGNIZERS,
    RUNTIMES,
    enhance_mode_flag,
    enhance_mode_from_flag,
)
from ghost_engine.commands.common import (
    FiniteFloat,
    choice_option,
    count_option,
    device_option,
    generator_blocks_option,
    models_dir_option,
    shown,
)

# SwapConfig fields set by `swap_options`, in the order the options appear.
SHARED_FIELDS = (
    "generator",
    "generator_blocks",
    "detector",
    "recognizer",
    "mask_mode",
    "color_match",
    "all_faces",
    "similarity_threshold",
    "device",
    "models_dir",
    "download",
    "enhance",
    "enhance_mode",
    "enhance_blend",
    "runtime",
    "detect_every",
)

_OPTIONS = (
    choice_option(
        "--generator",
        GENERATORS,
        "ghost",
        "ghost: the published weights; random: right cost, no real face (benchmarks); "
        "passthrough: every stage but the generator (diagnostics).",
    ),
    generator_blocks_option,
    choice_option(
        "--detector", DETECTORS, "auto", "auto: SCRFD if installed, else the offline dlib detector."
    ),
    choice_option(
        "--recognizer",
        RECOGNIZERS,
        "auto",
        "Face recogniser used to match faces to --target-face references.",
    ),
    choice_option(
        "--mask-mode",
        MASK_MODES,
        "ghost",
        "ghost: mask settings frozen per track segment; adaptive: they follow smoothly.",
    ),
    click.option("--color-match", is_flag=True, help="Match the swap's colours to the target."),
    click.option("--all-faces", is_flag=True, help="Swap every face with the first source."),
    shown(
        "--similarity-threshold",
        kind=FiniteFloat(-1.0, 1.0),
        default=0.15,
        help="Cosine similarity above which a face is the reference's (-1 to 1).",
    ),
    device_option,
    models_dir_option,
    click.option("--download", is_flag=True, help="Download missing models first (asks first)."),
    click.option(
        "--enhance", is_flag=True, help="Face super-resolution (GHOST's LIP-SPADE) on each swap."
    ),
    choice_option(
        "--enhance-mode",
        ENHANCE_MODE_FLAGS,
        enhance_mode_flag("per_face"),
        "per-face: each face normalised alone (stable in a stream); official: batch "
        "statistics, as GHOST's inference.",
    ),
    shown(
        "--enhance-blend",
        kind=FiniteFloat(0.0, 1.0),
        default=1.0,
        help="Mix of enhanced (1) and unenhanced (0) face.",
    ),
    choice_option(
        "--runtime",
        RUNTIMES,
        "auto",
        "Generator runtime; auto: the faster one measured for the device (ONNX Runtime "
        "on CPUs, exported once and cached).",
    ),
    count_option(
        "--detect-every",
        10,
        help="Detect the whole frame at least every K frames (and on cuts, new or lost "
        "faces and changes outside the tracked ones), only around tracked faces between; "
        "1: every frame.",
    ),
)


def swap_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a click command with every shared face-swap option."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command


def swap_config_fields(opts: dict[str, Any]) -> dict[str, Any]:
    """The SwapConfig keyword arguments for the shared options in `opts`."""
    fields = {name: opts[name] for name in SHARED_FIELDS}
    fields["enhance_mode"] = enhance_mode_from_flag(fields["enhance_mode"])
    return fields
