"""`export_model`: one model to ONNX (fp32 and fp16) and optionally a TensorRT engine,
each followed by a parity check against the source on fresh random inputs."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import onnx

from ghost_engine.choices import EXPORT_FORMATS, EXPORT_PRECISIONS, SR_BN_MODES, check_choice
from ghost_engine.errors import ExportError, OutputError, UserInputError
from ghost_engine.export.metadata import export_metadata, set_metadata
from ghost_engine.export.onnx_checks import check_onnx
from ghost_engine.export.onnx_export import OPSET, simplify, torch_to_onnx
from ghost_engine.export.onnx_fp16 import convert_to_fp16, keep_fp32_rule
from ghost_engine.export.parity import (
    TOLERANCE,
    ParityResult,
    ReferenceCache,
    compare,
    require_parity,
)
from ghost_engine.export.profile import BatchProfile
from ghost_engine.export.sources import WeightSource, resolve_source
from ghost_engine.export.specs import BATCH, ExportSpec, IOSpec, export_spec
from ghost_engine.networks.checkpoint import sha256_file
from ghost_engine.runtime.onnx_model import OnnxModel

if TYPE_CHECKING:
    from ghost_engine.networks.lipspade import BNMode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportRequest:
    """Everything one export needs; see `ghost-engine export --help` for the meaning."""

    model: str
    out_dir: Path
    fmt: str = "onnx"
    precision: str = "fp32"
    checkpoint: Path | None = None
    random_weights: bool = False
    models_dir: Path | None = None
    profile: BatchProfile = field(default_factory=BatchProfile)
    bn_mode: str = "official"
    check: bool = True
    check_batches: tuple[int, ...] = ()  # default: profile.check_batches()
    check_sizes: tuple[tuple[str, int], ...] = ()  # symbolic spatial axes in checks
    typing: str = "strong"
    force: bool = False

    def __post_init__(self) -> None:
        for what, option, value, allowed in (
            ("format", "--format", self.fmt, EXPORT_FORMATS),
            ("precision", "--precision", self.precision, EXPORT_PRECISIONS),
            ("bn mode", "--bn-mode", self.bn_mode, SR_BN_MODES),
        ):
            check_choice(option, value, allowed, f"{what} {value!r}: choose one of {allowed}")
        if self.fmt == "onnx" and self.precision == "bf16":
            raise UserInputError(
                "bf16 ONNX is not exported (opset 17 has no bf16 convolution and ONNX Runtime "
                "cannot check it on the CPU); use --precision fp16, or --format tensorrt "
                "--precision bf16 --typing weak with TensorRT 10",
                option="--precision",
                value=self.precision,
            )


@dataclass(frozen=True)
class ExportResult:
    """The files written and every parity comparison made."""

    model: str
    onnx_files: dict[str, Path]  # precision -> file
    engine: Path | None
    parity: tuple[tuple[str, ParityResult], ...]  # (what was compared, result)


Runner = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _file_stem(spec: ExportSpec, req: ExportRequest) -> str:
    return f"{spec.name}.bn-{req.bn_mode}" if spec.name == "sr_lipspade" else spec.name


def _save(model: onnx.ModelProto, path: Path) -> Path:
    try:
        onnx.save(model, str(path))
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", path=path) from None
    return path


def _with_meta(model: onnx.ModelProto, spec, src: WeightSource, precision: str, req) -> None:
    extra = {"bn_mode": req.bn_mode} if spec.name == "sr_lipspade" else {}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), OPSET)
    set_metadata(
        model,
        export_metadata(
            model=spec.name,
            source=src.label,
            source_sha256=src.sha256,
            precision=precision,
            opset=opset,
            **extra,
        ),
    )


def _onnx_spec(spec: ExportSpec, path: Path) -> ExportSpec:
    """The spec with input/output names (and a fixed batch) as the ONNX file has them."""
    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    graph_inputs = [v for v in model.graph.input if v.name not in inits]
    inputs = []
    for given, value in zip(spec.inputs, graph_inputs, strict=False):
        dim0 = value.type.tensor_type.shape.dim[0]
        batch = dim0.dim_value if dim0.HasField("dim_value") else BATCH
        inputs.append(dataclasses.replace(given, name=value.name, shape=(batch, *given.shape[1:])))
    outputs = tuple(IOSpec(v.name, ()) for v in model.graph.output)
    return dataclasses.replace(spec, inputs=tuple(inputs), outputs=outputs)


def _fixed_batch(spec: ExportSpec) -> int | None:
    first = spec.inputs[0].shape[0]
    return first if isinstance(first, int) else None


def _torch_onnx(spec, req, src) -> tuple[dict[str, onnx.ModelProto], Runner]:
    from ghost_engine.export.parity import torch_runner
    from ghost_engine.export.torch_modules import export_module, load_network, reference_module

    net = load_network(spec.network, src.path)
    bn_mode = cast("BNMode", req.bn_mode)  # one of SR_BN_MODES, checked by ExportRequest
    traced = torch_to_onnx(export_module(spec, net, bn_mode=bn_mode), spec)
    fp32 = simplify(traced, req.out_dir)
    return {"fp32": fp32}, torch_runner(reference_module(spec, net, bn_mode=bn_mode), spec)


def export_model(req: ExportRequest) -> ExportResult:
    """Run one export end to end; raises ExportError when a check fails."""
    spec = export_spec(req.model)
    if req.fmt == "tensorrt":
        from ghost_engine.runtime.tensorrt import import_tensorrt

        import_tensorrt()  # fail before minutes of ONNX work, not after
    src = resolve_source(
        spec, req.checkpoint, random_weights=req.random_weights, models_dir=req.models_dir
    )
    if spec.from_onnx and req.fmt == "onnx" and req.precision == "fp32":
        raise UserInputError(
            f"{spec.name} is published as ONNX already ({src.path}); use --precision fp16 for "
            "its fp16 variant, or --format tensorrt",
            path=src.path,
            option="--precision",
            value=req.precision,
        )
    try:
        req.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create {req.out_dir}: {exc.strerror or exc}", path=req.out_dir
        ) from None
    stem = _file_stem(spec, req)
    published: Path | None = None  # the source file of a model that comes as ONNX
    if spec.from_onnx:
        if src.path is None:  # resolve_source refuses fill-rule weights for these
            raise ExportError(f"{spec.name} comes as ONNX but no ONNX file was resolved")
        published = src.path
        spec = _onnx_spec(spec, published)
        models = {"fp32": onnx.load(str(published))}
        reference = OnnxModel(published)

        def ref_runner(inputs):
            return reference(**inputs)
    else:
        models, ref_runner = _torch_onnx(spec, req, src)

    files: dict[str, Path] = {}
    if published is None:
        _with_meta(models["fp32"], spec, src, "fp32", req)
        check_onnx(models["fp32"], what=f"{spec.name} fp32")
        files["fp32"] = _save(models["fp32"], req.out_dir / f"{stem}.fp32.onnx")
    else:
        files["fp32"] = published
    wants_fp16 = req.precision == "fp16" and (req.fmt == "onnx" or req.typing == "strong")
    if wants_fp16:
        fp16 = convert_to_fp16(models["fp32"], keep_fp32_rule(spec.fp32_ops, spec.fp32_scopes))
        _with_meta(fp16, spec, src, "fp16", req)
        check_onnx(fp16, what=f"{spec.name} fp16")
        files["fp16"] = _save(fp16, req.out_dir / f"{stem}.fp16.onnx")
    del models

    batches = req.check_batches or req.profile.check_batches()
    if (fixed := _fixed_batch(spec)) is not None:
        batches = (fixed,)
    parity: list[tuple[str, ParityResult]] = []
    if req.check:
        parity += _check_onnx_files(
            spec, files, ref_runner, batches, dict(req.check_sizes), skip_source=spec.from_onnx
        )

    engine = None
    if req.fmt == "tensorrt":
        engine = _build_trt(spec, req, files)
        if req.check:
            parity += _check_engine(spec, engine, ref_runner, batches, req.precision)
    return ExportResult(spec.name, files, engine, tuple(parity))


def _onnx_runner(model: OnnxModel) -> Runner:
    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return model(**inputs)

    return run


def _check_onnx_files(spec, files, reference: Runner, batches, sizes, *, skip_source: bool):
    out: list[tuple[str, ParityResult]] = []
    cache: ReferenceCache = {}
    for precision, path in files.items():
        if skip_source and precision == "fp32":
            continue  # the published file is its own reference
        results = compare(
            _onnx_runner(OnnxModel(path)),
            reference,
            spec,
            batches=batches,
            tolerance=TOLERANCE[precision],
            sizes=sizes,
            cache=cache,
        )
        require_parity(results, f"{path.name} (ONNX Runtime)")
        out += [(f"onnx-{precision}", r) for r in results]
    return out


def _build_trt(spec: ExportSpec, req: ExportRequest, files: dict[str, Path]) -> Path:
    from ghost_engine.export.tensorrt_build import TrtBuildConfig, build_engine

    config = TrtBuildConfig(
        precision=req.precision, profile=req.profile, typing=req.typing, force=req.force
    )
    source = files["fp16"] if "fp16" in files and req.typing == "strong" else files["fp32"]
    return build_engine(
        source, req.out_dir, spec=spec, config=config, onnx_sha256=sha256_file(source)
    )


def _check_engine(spec, engine: Path, reference: Runner, batches, precision: str):
    from ghost_engine.export.tensorrt_check import engine_runner

    results = compare(
        engine_runner(engine), reference, spec, batches=batches, tolerance=TOLERANCE[precision]
    )
    require_parity(results, f"{engine.name} (TensorRT)")
    return [(f"tensorrt-{precision}", r) for r in results]
