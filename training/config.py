"""Training configuration: frozen dataclasses, the paper's two stages, files and overrides.

Every flag of the official `train.py` has a counterpart here (see `OFFICIAL_FLAGS`), but
booleans are real booleans and nothing is a hard-coded path. A config is built from a
preset, then a TOML/JSON file, then `section.key=value` overrides, and the resolved result
is saved with every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghost_engine.errors import InputFileNotFoundError, UserInputError

try:  # Python 3.11+; on 3.10 config files must be JSON
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - depends on the interpreter
    tomllib = None

PRECISIONS = ("fp32", "fp16", "bf16")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator loss terms (official `--weight_*`)."""

    adv: float = 1.0
    attr: float = 10.0
    id: float = 15.0
    rec: float = 10.0
    eyes: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    """Network shapes. The defaults are the official layout (checkpoints interchange).

    `base_channels`, `max_channels` and `image_size` scale the generator; anything but
    (32, 1024, 256) is NOT the official layout and gives checkpoints only this project
    reads. `identity`/`landmarks` name a registered network or "tiny" (a small frozen
    random stand-in for experiments and tests, never for real training).
    """

    backbone: str = "unet"
    num_blocks: int = 2
    c_id: int = 512
    base_channels: int = 32
    max_channels: int = 1024
    image_size: int = 256
    d_ndf: int = 64
    d_layers: int = 5
    d_scales: int = 3
    identity: str = "arcface_iresnet100"
    identity_weights: str = ""
    landmarks: str = "fan_wflw_4hg"
    landmark_weights: str = ""
    allow_random_frozen: bool = False
    sync_bn: bool = True

    @property
    def official_generator(self) -> bool:
        return (self.base_channels, self.max_channels, self.image_size, self.c_id) == (
            32,
            1024,
            256,
            512,
        )


@dataclass(frozen=True)
class DataConfig:
    """The prepared dataset and the official pair sampling."""

    root: str = ""
    same_prob: float = 0.2
    same_identity: bool = True
    jitter: tuple[float, float, float, float] = (0.2, 0.2, 0.2, 0.01)
    workers: int = 8


@dataclass(frozen=True)
class OptimConfig:
    """Adam for G and D, the optional StepLR, the "train D only while weak" rule."""

    lr_g: float = 4e-4
    lr_d: float = 4e-4
    betas: tuple[float, float] = (0.0, 0.999)
    eps: float = 1e-8
    weight_decay: float = 1e-4
    scheduler: bool = False
    scheduler_step: int = 5000
    scheduler_gamma: float = 0.2
    discr_force: bool = False
    discr_force_threshold: float = 4.0
    adv_accumulated_init: float = 20.0
    loss_scale_init: float = 65536.0  # fp16 only: GradScaler's first scale (halves on overflow)


def check_run_settings(precision: str, batch_size: int, epochs: int, max_steps: int) -> None:
    """The checks every training run's settings share (swap and SR training)."""
    if precision not in PRECISIONS:
        raise UserInputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if batch_size < 1 or epochs < 1 or max_steps < 0:
        raise UserInputError(
            f"batch_size and epochs must be >= 1 and max_steps >= 0, got "
            f"{batch_size}, {epochs}, {max_steps}"
        )


@dataclass(frozen=True)
class TrainConfig:
    """One training run. `batch_size` is the global batch, split evenly over processes."""

    stage: str = "stage1"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    weights: LossWeights = field(default_factory=LossWeights)
    batch_size: int = 16
    epochs: int = 12
    max_steps: int = 0
    diff_eq_same: bool = False
    adv_diff_only: bool = False
    precision: str = "fp32"
    init_g: str = ""
    init_d: str = ""
    out_dir: str = "runs/ghost"
    resume: bool = True
    log_every: int = 10
    image_every: int = 500
    save_every: int = 5000
    save_epoch: int = 1
    tensorboard: bool = True
    seed: int = 0
    deterministic: bool = False
    device: str = "auto"

    def __post_init__(self) -> None:
        check_run_settings(self.precision, self.batch_size, self.epochs, self.max_steps)
        if not 0.0 <= self.data.same_prob <= 1.0:
            raise UserInputError(f"data.same_prob must be in [0, 1], got {self.data.same_prob}")

    @property
    def eye_loss(self) -> bool:
        return self.weights.eyes > 0


# Official train.py flag -> our setting (documentation and the CLI's --help table).
OFFICIAL_FLAGS: dict[str, str] = {
    "dataset_path": "data.root (train swap --data)",
    "G_path / D_path / pretrained": "init_g / init_d (empty: start from scratch)",
    "vgg / same_identity": "data.same_identity",
    "weight_adv/attr/id/rec/eyes": "weights.adv/attr/id/rec/eyes",
    "backbone / num_blocks": "model.backbone / model.num_blocks",
    "same_person": "data.same_prob",
    "diff_eq_same": "diff_eq_same",
    "discr_force": "optim.discr_force (+ optim.discr_force_threshold)",
    "scheduler / scheduler_step / scheduler_gamma": "optim.scheduler / _step / _gamma",
    "eye_detector_loss": "weights.eyes > 0",
    "use_wandb / wandb_project / wandb_entity": "tensorboard (+ metrics.jsonl always)",
    "run_name": "out_dir",
    "batch_size / lr_G / lr_D / max_epoch": "batch_size / optim.lr_g / optim.lr_d / epochs",
    "show_step / save_epoch": "image_every / save_epoch (+ save_every steps)",
    "optim_level (apex O0-O3)": "precision fp32 / fp16 / bf16 (torch.amp)",
}


def stage1() -> TrainConfig:
    """Paper stage 1: adv 1, attr 10, id 15, rec 10, no eye loss; 12 epochs, batch 16."""
    return TrainConfig(stage="stage1", weights=LossWeights(1.0, 10.0, 15.0, 10.0, 0.0))


def stage2() -> TrainConfig:
    """Paper stage 2, from stage 1's weights (set init_g/init_d): id 70, eye 1200."""
    return TrainConfig(stage="stage2", weights=LossWeights(1.0, 10.0, 70.0, 10.0, 1200.0))


def tiny_model() -> ModelConfig:
    """A NOT-official, ~1000x cheaper layout for CPU experiments and tests (64x64 faces)."""
    return ModelConfig(
        base_channels=8,
        max_channels=32,
        image_size=64,
        c_id=64,
        d_ndf=8,
        d_layers=3,
        identity="tiny",
        landmarks="tiny",
        allow_random_frozen=True,
    )


PRESETS = {"stage1": stage1, "stage2": stage2}


def preset(name: str, *, tiny: bool = False) -> TrainConfig:
    """A named preset, optionally on the tiny (non-official) networks."""
    if name not in PRESETS:
        raise UserInputError(f"unknown stage {name!r}; choose one of {sorted(PRESETS)}")
    cfg = PRESETS[name]()
    return dataclasses.replace(cfg, model=tiny_model()) if tiny else cfg


def to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """Plain nested dict (JSON/TOML-friendly) of a config."""
    return dataclasses.asdict(cfg)


def _coerce(value: Any, like: Any, key: str) -> Any:
    """`value` (from a file or a `k=v` string) converted to the type of the default `like`."""
    if isinstance(value, str) and not isinstance(like, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise UserInputError(f"{key}: cannot read {value!r} as {type(like).__name__}") from None
    if isinstance(like, bool):
        if not isinstance(value, bool):
            raise UserInputError(f"{key} must be true or false, got {value!r}")
        return value
    if isinstance(like, int | float) and not isinstance(value, bool):
        if isinstance(value, int | float):
            if isinstance(like, int) and not float(value).is_integer():
                raise UserInputError(f"{key} must be an integer, got {value!r}")
            return type(like)(value)
    if isinstance(like, tuple) and isinstance(value, list | tuple) and len(value) == len(like):
        return tuple(_coerce(v, l, key) for v, l in zip(value, like, strict=True))
    if isinstance(like, str) and isinstance(value, str | int | float):
        return str(value)
    raise UserInputError(f"{key}: {value!r} does not fit (expected like {like!r})")


def merge(cfg: Any, values: dict[str, Any], prefix: str = "") -> Any:
    """A copy of dataclass `cfg` with the nested `values` applied; unknown keys are errors."""
    known = {f.name for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if key not in known:
            raise UserInputError(f"unknown setting {name!r}; known: {', '.join(sorted(known))}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise UserInputError(f"{name} is a section; give it a table of settings")
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
            raise UserInputError(f"override {item!r} must look like section.key=value")
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
        raise InputFileNotFoundError(f"config file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml" and tomllib is None:
        raise UserInputError(f"{path}: TOML needs Python 3.11+; write the config as JSON")
    try:
        return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (ValueError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{path}: not a valid config file ({exc})") from None


def from_dict(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """A config from a nested dict (e.g. one saved in a checkpoint) over `base`."""
    return merge(base or TrainConfig(), values)
