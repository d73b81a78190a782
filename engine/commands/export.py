"""`ghost-engine export --model NAME --format onnx|tensorrt -o DIR`.

Exports a network to ONNX (fp32, plus the fp16 variant) or builds a TensorRT engine,
then checks the result against its source on fresh random inputs (`--no-check` skips).
"""

from __future__ import annotations

from pathlib import Path

import click

from ghost_engine.choices import EXPORT_FORMATS, EXPORT_PRECISIONS, SR_BN_MODES, TRT_TYPINGS
from ghost_engine.commands.common import choice_option, shown
from ghost_engine.export.profile import BatchProfile
from ghost_engine.export.specs import names


@click.command("export")
@click.option(
    "--model", "model", required=True, type=click.Choice(names()), help="Model to export."
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Weights (.pth/.safetensors, or the .onnx of a published ONNX model). "
    "Default: the installed model file.",
)
@click.option(
    "--random-weights",
    is_flag=True,
    help="Use the deterministic fill-rule weights (benchmarks, tests) instead of a checkpoint.",
)
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="onnx")
@click.option(
    "--precision",
    type=click.Choice(EXPORT_PRECISIONS),
    default=None,
    help="Default: fp32 for ONNX (the fp16 file is written with --precision fp16), "
    "fp16 for TensorRT.",
)
@shown(
    "--batch",
    "batch",
    default="1:8:32",
    help="Batch range MIN:OPT:MAX of the dynamic batch axis (TensorRT profile; the check "
    "runs at MIN and OPT).",
)
@choice_option(
    "--bn-mode",
    SR_BN_MODES,
    "official",
    "Super-resolution BatchNorm mode (see ghost_engine.networks.lipspade.BN_MODES).",
)
@choice_option(
    "--typing",
    TRT_TYPINGS,
    "strong",
    "TensorRT: precision from the ONNX (strong) or TensorRT 10 builder flags (weak).",
)
@click.option("--check/--no-check", default=True, show_default=True, help="Parity check.")
@click.option("--force", is_flag=True, help="Rebuild a TensorRT engine even if it is current.")
@click.option(
    "-o", "--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path)
)
def export(
    model: str,
    checkpoint: Path | None,
    random_weights: bool,
    models_dir: Path | None,
    fmt: str,
    precision: str | None,
    batch: str,
    bn_mode: str,
    typing: str,
    check: bool,
    force: bool,
    out_dir: Path,
) -> None:
    """Export a network to ONNX or build a TensorRT engine, then check its parity."""
    from ghost_engine.export.exporter import ExportRequest, export_model

    request = ExportRequest(
        model=model,
        out_dir=out_dir,
        fmt=fmt,
        precision=precision or ("fp16" if fmt == "tensorrt" else "fp32"),
        checkpoint=checkpoint,
        random_weights=random_weights,
        models_dir=models_dir,
        profile=BatchProfile.parse(batch),
        bn_mode=bn_mode,
        check=check,
        typing=typing,
        force=force,
    )
    result = export_model(request)
    for precision_name, path in result.onnx_files.items():
        click.echo(f"onnx {precision_name}: {path}")
    if result.engine is not None:
        click.echo(f"tensorrt engine: {result.engine}")
    for what, r in result.parity:
        click.echo(
            f"check {what} batch {r.batch} {r.output}: relative error {r.rel_error:.2e} "
            f"(limit {r.tolerance:g}) ok"
        )
