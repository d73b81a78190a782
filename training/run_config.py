"""What every training run is configured with, and how a config is read, merged and saved.

Swap training (`config.TrainConfig`) and face-renovation training
(`sr_config.SRTrainConfig`) are both `RunConfig`s: the run settings they share (batch,
length, precision, starting weights, files, logging, seed, device) are declared and
checked here once; each adds its own sections (`model`, `data`, `optim`, `weights`). A
config is built from a preset, then a TOML/JSON file (`read_file`), then
`section.key=value` overrides (`parse_overrides`), each applied with `merge`, and the
resolved result is saved with every checkpoint (`to_dict`).
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ghost_engine.choices import TRAIN_PRECISIONS, check_choice
from ghost_engine.errors import InputFileNotFoundError, UserInputError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


# The numeric precisions a run can train in (torch.amp autocast for the half ones).
PRECISIONS = TRAIN_PRECISIONS

Config = TypeVar("Config", bound="DataclassInstance")
Model = TypeVar("Model", bound="ModelSettings")


@dataclass(frozen=True)
class ModelSettings:
    """Network settings every training has: the image size it trains at, the PatchGAN
    discriminator's width, depth and number of scales, and whether the generator's
    BatchNorm statistics are shared over processes (each training's model section adds
    its own networks' settings)."""

    image_size: int = 256
    d_ndf: int = 64
    d_layers: int = 4
    d_scales: int = 2
    sync_bn: bool = True


def tiny_model_settings(model_type: type[Model], **own: Any) -> Model:
    """A NOT-official, cheap `model_type` for CPU experiments and tests: 64x64 faces and a
    narrow 3-layer discriminator, with the training's `own` narrow settings."""
    return model_type(image_size=64, d_ndf=8, d_layers=3, **own)


@dataclass(frozen=True)
class DataSource:
    """Where a run's training data is, and how many loader processes per training
    process read it (each training's data section adds its own settings)."""

    root: str = ""
    workers: int = 4


@dataclass(frozen=True)
class RunConfig:
    """Settings every training run has. `batch_size` is the global batch, split evenly
    over processes; `max_steps` 0 means no limit but `epochs`; `save_every` and
    `save_epoch` 0 turn those checkpoints off. Subclasses set their own defaults and add
    their sections (`model` and `data` become theirs)."""

    batch_size: int = 8
    epochs: int = 10
    max_steps: int = 0
    precision: str = "fp32"
    init_g: str = ""
    init_d: str = ""
    out_dir: str = "runs/train"
    resume: bool = True
    log_every: int = 10
    image_every: int = 500
    save_every: int = 2000
    save_epoch: int = 1
    tensorboard: bool = True
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSource = field(default_factory=DataSource)

    def __post_init__(self) -> None:
        message = f"precision must be one of {PRECISIONS}, got {self.precision!r}"
        check_choice("precision", self.precision, PRECISIONS, message)
        if self.batch_size < 1 or self.epochs < 1 or self.max_steps < 0:
            raise UserInputError(
                f"batch_size and epochs must be >= 1 and max_steps >= 0, got "
                f"{self.batch_size}, {self.epochs}, {self.max_steps}"
            )


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dict (JSON/TOML-friendly) of a config."""
    return dataclasses.asdict(cfg)


def _coerce(value: Any, like: Any, key: str) -> Any:
    """`value` (from a file or a `k=v` string) converted to the type of the default `like`."""
    if isinstance(value, str) and not isinstance(like, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise UserInputError(
                f"{key}: cannot read {value!r} as {type(like).__name__}", option=key, value=value
            ) from None
    if isinstance(like, bool):
        if not isinstance(value, bool):
            raise UserInputError(
                f"{key} must be true or false, got {value!r}", option=key, value=value
            )
        return value
    if isinstance(like, int | float) and not isinstance(value, bool):
        if isinstance(value, int | float):
            if isinstance(like, int) and not float(value).is_integer():
                raise UserInputError(
                    f"{key} must be an integer, got {value!r}", option=key, value=value
                )
            return type(like)(value)
    if isinstance(like, tuple) and isinstance(value, list | tuple) and len(value) == len(like):
        return tuple(_coerce(v, l, key) for v, l in zip(value, like, strict=True))
    if isinstance(like, str) and isinstance(value, str | int | float):
        return str(value)
    raise UserInputError(
        f"{key}: {value!r} does not fit (expected like {like!r})", option=key, value=value
    )


def merge(cfg: Config, values: dict[str, Any], prefix: str = "") -> Config:
    """A copy of dataclass `cfg` with the nested `values` applied; unknown keys are errors."""
    known = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise UserInputError(
                f"unknown setting {name!r}; known: {', '.join(sorted(known))}",
                option=name,
                allowed=sorted(known),
            )
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current) and not isinstance(current, type):
            if not isinstance(value, dict):
                raise UserInputError(
                    f"{name} is a section; give it a table of settings", option=name
                )
            changes[key] = merge(current, value, f"{name}.")
        else:
            changes[key] = _coerce(value, current, name)
    return dataclasses.replace(cfg, **changes)


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """["optim.lr_g=1e-4", "batch_size=8"] -> nested dict (values still strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserInputError(
                f"override {item!r} must look like section.key=value", option="--set", value=item
            )
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value.strip()
    return out


def read_file(path: str | Path) -> dict[str, Any]:
    """A config file's nested dict: TOML (`.toml`) or JSON (anything else)."""
    path = Path(path)
    if not path.is_file():
        raise InputFileNotFoundError(f"config file not found: {path}", path=path)
    text = path.read_text(encoding="utf-8")
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{path}: not a valid config file ({exc})", path=path) from None
