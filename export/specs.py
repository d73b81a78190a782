"""What each exportable model looks like from outside: inputs, outputs, fp32 regions.

Described as data so the exporter, the parity check and the TensorRT profiles read one
source instead of guessing from a graph's node names.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghost_engine.errors import UserInputError

BATCH = "batch"


@dataclass(frozen=True)
class IOSpec:
    """One input or output: name, shape (`BATCH` or a symbolic name for dynamic axes)
    and, for inputs, the range fresh random test values are drawn from."""

    name: str
    shape: tuple[int | str, ...]
    low: float = -1.0
    high: float = 1.0

    def dynamic_axes(self) -> dict[int, str]:
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}


@dataclass(frozen=True)
class ExportSpec:
    """An exportable model.

    `network` is the registry name built from PyTorch, or None for models that already
    come as ONNX (`manifest_name` names their file in the model store). `fp32_ops` and
    `fp32_scopes` say which nodes the fp16 variant keeps in fp32: op types, and markers
    that the export modules put into node names (see `torch_modules.Fp32Region`).
    `check_size` replaces symbolic spatial axes in parity checks (smaller is faster).
    """

    name: str
    inputs: tuple[IOSpec, ...]
    outputs: tuple[IOSpec, ...]
    network: str | None = None
    manifest_name: str | None = None
    fp32_ops: tuple[str, ...] = ()
    fp32_scopes: tuple[str, ...] = ()
    check_size: tuple[tuple[str, int], ...] = ()
    description: str = ""

    @property
    def from_onnx(self) -> bool:
        return self.network is None


# Normalisation statistics overflow in fp16 (TensorRT recommends fp32 for them), so every
# spec keeps InstanceNormalization in fp32; the SR net also keeps its explicit batch
# statistics and its local-importance pooling (exp(12) > fp16 max) in fp32.
_NORM_OPS = ("InstanceNormalization",)
_FP32_SCOPE = "fp32_region"


def _generator(blocks: int) -> ExportSpec:
    """The AEI-Net generator with `blocks` AAD layers per ResBlock: target and identity
    in, the swapped face out."""
    return ExportSpec(
        f"G_unet_{blocks}blocks",
        network=f"G_unet_{blocks}blocks",
        inputs=(
            IOSpec("target", (BATCH, 3, 256, 256), -1.0, 1.0),
            IOSpec("z_id", (BATCH, 512), -2.0, 2.0),
        ),
        outputs=(IOSpec("swap", (BATCH, 3, 256, 256)),),
        fp32_ops=_NORM_OPS,
        description=f"AEI-Net generator, {blocks} AAD layer(s) per ResBlock",
    )


def _published_onnx(name: str, size: int, description: str) -> ExportSpec:
    """A model that comes as ONNX under its manifest name: one square image input, its
    outputs as the file declares them."""
    return ExportSpec(
        name,
        manifest_name=name,
        inputs=(IOSpec("input", (BATCH, 3, size, size)),),
        outputs=(),
        fp32_ops=_NORM_OPS,
        description=description,
    )


_SPECS: dict[str, ExportSpec] = {
    s.name: s
    for s in (
        *(_generator(k) for k in (1, 2, 3)),
        ExportSpec(
            "arcface_iresnet100",
            network="arcface_iresnet100",
            inputs=(IOSpec("input", (BATCH, 3, 112, 112)),),
            outputs=(IOSpec("embedding", (BATCH, 512)),),
            description="ArcFace identity encoder",
        ),
        ExportSpec(
            "sr_lipspade",
            network="sr_lipspade",
            inputs=(IOSpec("image", (BATCH, 3, "height", "width"), 0.0, 1.0),),
            outputs=(IOSpec("renovated", (BATCH, 3, "height", "width")),),
            fp32_ops=_NORM_OPS,
            fp32_scopes=(_FP32_SCOPE,),
            check_size=(("height", 256), ("width", 256)),
            description="LIP-SPADE face-renovation super-resolution (spectral norm folded)",
        ),
        _published_onnx(
            "scrfd_10g_bnkps", 640, "SCRFD detector (ONNX as published; fixed 640x640 input)"
        ),
        _published_onnx("glintr100", 112, "ResNet100@Glint360K recogniser (ONNX as published)"),
        _published_onnx("landmarks_2d106", 192, "2d106det landmarks (ONNX as published)"),
    )
}

FP32_SCOPE = _FP32_SCOPE


def names() -> list[str]:
    """Every exportable model name."""
    return sorted(_SPECS)


def export_spec(name: str) -> ExportSpec:
    """The spec for `name`, or a UserInputError listing the exportable names."""
    if name not in _SPECS:
        raise UserInputError(f"cannot export {name!r}; exportable models: {', '.join(names())}")
    return _SPECS[name]
