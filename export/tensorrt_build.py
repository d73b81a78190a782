"""Build a TensorRT engine from an exported ONNX file.

Precision follows the TensorRT 11 way by default: the network is strongly typed and
takes its precision from the ONNX (the fp16 variant for fp16). `typing="weak"` uses the
fp32 ONNX with a builder flag instead, which only TensorRT 10 offers (and is the only
route to bf16 here, since opset 17 has no bf16 convolutions).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from ghost_engine.choices import EXPORT_PRECISIONS, TRT_TYPINGS, check_choice
from ghost_engine.errors import ExportError, UserInputError
from ghost_engine.export.profile import BatchProfile
from ghost_engine.export.specs import ExportSpec
from ghost_engine.export.tensorrt_env import (
    GpuIdentity,
    cuda_device_identity,
    engine_filename,
    timing_cache_path,
)
from ghost_engine.runtime.tensorrt import import_tensorrt

GIB = 1 << 30


@dataclass(frozen=True)
class TrtBuildConfig:
    """How to build: precision, batch profile, typing mode, workspace, rebuild policy."""

    precision: str = "fp16"
    profile: BatchProfile = field(default_factory=BatchProfile)
    typing: str = "strong"  # "strong" (precision from the ONNX) or "weak" (TensorRT 10 flags)
    workspace_gib: float = 8.0
    force: bool = False

    def __post_init__(self) -> None:
        message = f"precision {self.precision!r}: choose one of {EXPORT_PRECISIONS}"
        check_choice("--precision", self.precision, EXPORT_PRECISIONS, message)
        message = f"typing {self.typing!r}: choose 'strong' or 'weak'"
        check_choice("--typing", self.typing, TRT_TYPINGS, message)
        if self.precision == "bf16" and self.typing == "strong":
            raise UserInputError(
                "bf16 engines need weak typing (TensorRT 10's BF16 flag on the fp32 ONNX): "
                "the exported ONNX (opset 17) has no bf16 variant",
                option="--typing",
                value=self.typing,
            )


def profile_shapes(
    graph_shape: tuple[int, ...],
    spec_shape: tuple[int | str, ...],
    profile: BatchProfile,
    sizes: dict[str, int],
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes of one input: dynamic batch from `profile`, other dynamic
    axes from the spec (fixed ints, or `sizes` for symbolic ones); fixed axes kept."""
    if len(graph_shape) != len(spec_shape):
        raise ExportError(f"input has rank {len(graph_shape)}, expected {len(spec_shape)}")
    shapes: list[list[int]] = [[], [], []]
    for axis, (dim, want) in enumerate(zip(graph_shape, spec_shape, strict=True)):
        if dim >= 0:
            values = (dim, dim, dim)
        elif axis == 0:
            values = (profile.min, profile.opt, profile.max)
        elif isinstance(want, int):
            values = (want, want, want)
        elif want in sizes:
            values = (sizes[want],) * 3
        else:
            raise ExportError(f"axis {axis} ({want}) is dynamic and has no size to build for")
        for i in range(3):
            shapes[i].append(values[i])
    return tuple(shapes[0]), tuple(shapes[1]), tuple(shapes[2])


def graph_profile(graph_batch: int, profile: BatchProfile) -> BatchProfile:
    """The profile an engine actually gets: a graph with a fixed batch pins it."""
    return profile if graph_batch < 0 else BatchProfile(graph_batch, graph_batch, graph_batch)


def _parse(trt: ModuleType, builder, onnx_path: Path, strong: bool, logger):
    flags = 0
    if strong and hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {onnx_path.name}: {errors}", path=onnx_path)
    return network, parser


def _weak_flag(trt: ModuleType, precision: str):
    name = {"fp16": "FP16", "bf16": "BF16"}[precision]
    flag = getattr(trt.BuilderFlag, name, None)
    if flag is None:
        raise ExportError(
            f"TensorRT {trt.__version__} has no {name} builder flag (weak typing was removed "
            "in TensorRT 11); build fp16 with strong typing from the fp16 ONNX instead"
        )
    return flag


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def build_engine(
    onnx_path: Path,
    out_dir: Path,
    *,
    spec: ExportSpec,
    config: TrtBuildConfig,
    onnx_sha256: str,
    gpu: GpuIdentity | None = None,
    trt: ModuleType | None = None,
) -> Path:
    """Build (or reuse) the engine for `onnx_path`; returns the engine file.

    The engine is reused when a file of the same name (GPU, TensorRT version, precision,
    profile) was built from the same ONNX (its SHA-256 is in the `.json` beside it). The
    timing cache beside the engines is loaded before and saved after every build.
    """
    trt = trt or import_tensorrt()
    gpu = gpu or cuda_device_identity()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network, _parser = _parse(trt, builder, onnx_path, config.typing == "strong", logger)
    first = network.get_input(0)
    profile = graph_profile(int(first.shape[0]), config.profile)
    engine_path = Path(out_dir) / engine_filename(
        spec.name, config.precision, profile, gpu, trt.__version__
    )
    sidecar = engine_path.with_name(engine_path.name + ".json")
    if not config.force and engine_path.is_file() and sidecar.is_file():
        if json.loads(sidecar.read_text()).get("onnx_sha256") == onnx_sha256:
            return engine_path

    cfg = builder.create_builder_config()
    cfg.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(config.workspace_gib * GIB))
    if config.typing == "weak" and config.precision != "fp32":
        cfg.set_flag(_weak_flag(trt, config.precision))
    opt_profile = builder.create_optimization_profile()
    sizes = dict(spec.check_size)
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        spec_shape = spec.inputs[i].shape if i < len(spec.inputs) else tuple(tensor.shape)
        lo, opt, hi = profile_shapes(tuple(tensor.shape), spec_shape, profile, sizes)
        opt_profile.set_shape(tensor.name, lo, opt, hi)
    cfg.add_optimization_profile(opt_profile)

    cache_path = timing_cache_path(out_dir, gpu, trt.__version__)
    cache = cfg.create_timing_cache(cache_path.read_bytes() if cache_path.is_file() else b"")
    cfg.set_timing_cache(cache, False)  # refuse a cache from another GPU
    serialized = builder.build_serialized_network(network, cfg)
    if serialized is None:
        raise ExportError(
            f"TensorRT failed to build {engine_path.name}; see its log above", path=engine_path
        )
    _write_atomic(engine_path, bytes(serialized))
    _write_atomic(cache_path, bytes(cache.serialize()))
    meta = {
        "model": spec.name,
        "onnx": onnx_path.name,
        "onnx_sha256": onnx_sha256,
        "precision": config.precision,
        "typing": config.typing,
        "profile": str(profile),
        "gpu": gpu.name,
        "tensorrt": trt.__version__,
    }
    _write_atomic(sidecar, json.dumps(meta, indent=2).encode())
    return engine_path
