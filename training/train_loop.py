"""One training loop for every recipe: processes, data, steps, exact resume, files, logs.

A `Recipe` says what is trained: its networks, optimisers, data, step, the names of its
weight files and what it logs (`swap_recipe`, `sr_recipe`). The loop does the rest the
same way for all of them. Single process or data parallel under `torchrun` (one process
per GPU, or Gloo on CPUs): the global batch is split evenly, gradients are averaged by
DistributedDataParallel, batch statistics are shared (`model.sync_bn`) and losses use
global counts, so every step on P processes has the gradients of one process with the
whole batch, to float rounding (which, at Adam's eps 1e-8, can flip the update of an
element whose gradient is near zero). The batch order is deterministic and resumes at
any step (`EpochOrder`); the resume point holds every RNG state, the optimiser,
scheduler and scaler states and the step counters, written atomically with the weights
(`run_state`); scalars go to `metrics.jsonl` and TensorBoard, sample grids to PNG
(`RunLog`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, TypeVar

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ghost_engine.errors import CheckpointError, UserInputError
from ghost_engine.networks.checkpoint import read_state_dict
from ghost_engine.runtime import devices
from ghost_engine.training import run_state
from ghost_engine.training.adversarial_step import AdamSettings, AdversarialStep, adam_optimisers
from ghost_engine.training.dataset import EpochDataset, EpochOrder
from ghost_engine.training.distributed import DistContext, barrier, init_distributed
from ghost_engine.training.monitor import RunLog
from ghost_engine.training.run_config import RunConfig, to_dict

log = logging.getLogger(__name__)

Batch = dict[str, torch.Tensor]


@dataclass
class Position:
    """Where the run is: the next step to take is `step` of `epoch`. A recipe whose steps
    carry a value from one to the next adds it as a field (saved and resumed with these)."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0


@dataclass
class TrainSummary:
    """What `TrainingLoop.run` did: steps taken, last losses, where the files are."""

    global_step: int
    losses: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path = Path(".")
    resumed_from: int | None = None

    def text(self, terms: tuple[str, ...]) -> str:
        """One line for people: the step reached, the last value of each of `terms`."""
        last = ", ".join(f"{k} {self.losses[k]:.4g}" for k in terms if k in self.losses)
        return f"trained to step {self.global_step} ({last}); weights in {self.out_dir}"


class StepResult(Protocol):
    """What a recipe's step returns: at least its losses, averaged over processes."""

    losses: dict[str, float]


class TrainedNetworks(Protocol):
    """A dataclass of a recipe's modules (None for one that is off): the trained G and D
    and any frozen helpers, all moved to the run's device together."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    @property
    def generator(self) -> torch.nn.Module: ...

    @property
    def discriminator(self) -> torch.nn.Module: ...


StepT = TypeVar("StepT", bound=AdversarialStep)
PositionT = TypeVar("PositionT", bound=Position)
ResultT = TypeVar("ResultT", bound=StepResult)


class Recipe(Protocol[StepT, PositionT, ResultT]):
    """What one kind of training supplies to the loop; its step, position and step
    result are its own types (subclasses of the loop's)."""

    @property
    def config(self) -> RunConfig:
        """The run's settings: a RunConfig with the recipe's own sections."""

    @property
    def command(self) -> str:
        """The command that trains it, for messages ("train swap")."""

    @property
    def broadcast_buffers(self) -> bool:
        """Whether DDP broadcasts G's buffers from the first process on every forward."""

    @property
    def summary_terms(self) -> tuple[str, ...]:
        """The losses the command prints at the end."""

    def start_position(self) -> PositionT:
        """A fresh run's position (with the recipe's carried values at their start)."""

    def build_networks(self) -> TrainedNetworks:
        """Fresh networks on the CPU, G and D in train mode, helpers frozen."""

    def use_global_batchnorm(self, generator: torch.nn.Module) -> None:
        """Make G's BatchNorm statistics those of the global batch (in place)."""

    def adam(self) -> AdamSettings:
        """How G's and D's optimisers, schedulers and grad scalers are made."""

    def dataset(self) -> EpochDataset:
        """The training items, indexed by (epoch, index) pairs."""

    @property
    def step_type(self) -> type[StepT]:
        """The step's class, bound by the loop to the run's networks and optimisers."""

    def take_step(self, step: StepT, batch: Batch, position: PositionT) -> ResultT:
        """One step on `batch` (carrying the recipe's values in `position`)."""

    def logged(self, out: ResultT) -> dict[str, float]:
        """The values of one step to log (the loop adds learning rates and throughput)."""

    def sample_grid(self, batch: Batch, out: ResultT) -> np.ndarray:
        """An RGB uint8 picture of the step's inputs and outputs."""

    def weight_files(self, tag: str) -> tuple[str, str]:
        """File names of G's and D's weights for `tag` ("latest" or an epoch's tag)."""

    def epoch_tag(self, epoch: int) -> str:
        """The tag of the weights saved after `epoch` epochs."""


def load_weights(module: torch.nn.Module, path: str, what: str) -> None:
    """Start `module` from the weight file at `path`, which must fit it exactly."""
    state = read_state_dict(path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} does not fit the {what} of this config ({str(exc).splitlines()[0]}); "
            "check model.* settings match the run that wrote it",
            path=path,
        ) from None


def _modules(nets: TrainedNetworks) -> Iterator[torch.nn.Module]:
    for item in dataclasses.fields(nets):
        module = getattr(nets, item.name)
        if module is not None:
            yield module


class TrainingLoop(Generic[StepT, PositionT, ResultT]):
    """A configured run of `recipe`; `run()` trains until `epochs` (or `max_steps`) and
    saves. Rebuilding it over the same `out_dir` resumes where the last save was."""

    def __init__(
        self, recipe: Recipe[StepT, PositionT, ResultT], ctx: DistContext | None = None
    ) -> None:
        config = recipe.config
        if not config.data.root:
            raise UserInputError(
                f"no dataset: set data.root ({recipe.command} --data DIR)", option="data.root"
            )
        self.recipe, self.cfg = recipe, config
        self.ctx = ctx or init_distributed(config.device)
        self.out_dir = Path(config.out_dir)
        torch.manual_seed(config.seed)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.nets = self._build()
        self.optim = adam_optimisers(
            self.nets.generator,
            self.nets.discriminator,
            self.ctx.device,
            config.precision,
            recipe.adam(),
        )
        self.dataset = recipe.dataset()
        self.order = EpochOrder(
            len(self.dataset), config.batch_size, config.seed, self.ctx.rank, self.ctx.world
        )
        self.position = recipe.start_position()
        self.resumed_from: int | None = None
        if config.resume and (self.out_dir / run_state.STATE_NAME).is_file():
            self._resume(self.out_dir / run_state.STATE_NAME)
        g, d = self.nets.generator, self.nets.discriminator
        if self.ctx.active:
            ids = devices.device_ids(self.ctx.device)
            g = DistributedDataParallel(
                g, device_ids=ids, broadcast_buffers=recipe.broadcast_buffers
            )
            d = DistributedDataParallel(d, device_ids=ids)
        self.step = recipe.step_type(self.nets, g, d, self.optim, config, self.ctx)
        self.log = RunLog(self.out_dir, enabled=self.ctx.main, tensorboard=config.tensorboard)

    def _build(self) -> TrainedNetworks:
        cfg = self.cfg
        nets = self.recipe.build_networks()
        if cfg.init_g:
            load_weights(nets.generator, cfg.init_g, "generator")
        if cfg.init_d:
            load_weights(nets.discriminator, cfg.init_d, "discriminator")
        if self.ctx.active and cfg.model.sync_bn:
            self.recipe.use_global_batchnorm(nets.generator)
        for module in _modules(nets):
            module.to(self.ctx.device)
        return nets

    # --- checkpoints -------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything the run needs to continue bit for bit (tensors and plain values)."""
        return {
            "generator": self.nets.generator.state_dict(),
            "discriminator": self.nets.discriminator.state_dict(),
            **self.optim.state_dict(),
            "rng": run_state.rng_state(),
            "position": dataclasses.asdict(self.position),
            "config": to_dict(self.cfg),
            "world": self.ctx.world,
        }

    def _resume(self, path: Path) -> None:
        state = run_state.load_state(path)
        if state["config"]["model"] != to_dict(self.cfg)["model"]:
            raise CheckpointError(
                f"{path} was written with different model settings; resume with the same "
                "model.* settings or use another out_dir",
                path=path,
            )
        self.nets.generator.load_state_dict(state["generator"])
        self.nets.discriminator.load_state_dict(state["discriminator"])
        self.optim.load_state_dict(state)
        run_state.set_rng_state(state["rng"])
        self.position = type(self.position)(**state["position"])
        self.resumed_from = self.position.global_step
        log.info("resumed %s at step %d", path, self.position.global_step)

    def _write_weights(self, tag: str) -> None:
        g_name, d_name = self.recipe.weight_files(tag)
        run_state.write_weights(self.out_dir / g_name, self.nets.generator)
        run_state.write_weights(self.out_dir / d_name, self.nets.discriminator)

    def save(self, tag: str | None = None) -> None:
        """Resume point and G/D weights (`latest`, and `tag`), by the main process only."""
        if self.ctx.main:
            run_state.save_state(self.out_dir, self.state())
            self._write_weights("latest")
            if tag:
                self._write_weights(tag)
        barrier(self.ctx)

    # --- loop ----------------------------------------------------------------------------

    def batches(self, epoch: int, first_step: int) -> Iterator[Batch]:
        """This process's batches of `epoch` from `first_step` on, on its device."""
        loader = DataLoader(
            self.dataset,
            batch_sampler=list(self.order.batches(epoch, first_step)),
            num_workers=self.cfg.data.workers,
            pin_memory=devices.is_gpu(self.ctx.device),
        )
        dev = self.ctx.device
        for batch in loader:
            yield {k: v.to(dev, non_blocking=True) for k, v in batch.items()}

    def _report(self, out: ResultT, batch: Batch, seconds: float) -> dict[str, float]:
        values = self.recipe.logged(out)
        values["lr_g"] = self.optim.g.param_groups[0]["lr"]
        values["lr_d"] = self.optim.d.param_groups[0]["lr"]
        values["images_per_s"] = self.cfg.batch_size / max(seconds, 1e-9)
        step = self.position.global_step
        if self.cfg.log_every and step % self.cfg.log_every == 0:
            self.log.scalars(step, values)
        if self.cfg.image_every and step % self.cfg.image_every == 0:
            self.log.image(step, self.recipe.sample_grid(batch, out))
        return values

    def _done(self) -> bool:
        return bool(self.cfg.max_steps) and self.position.global_step >= self.cfg.max_steps

    def run(self) -> TrainSummary:
        """Train to the end of the run, saving as configured and once at the end."""
        cfg, pos = self.cfg, self.position
        summary = TrainSummary(
            pos.global_step, out_dir=self.out_dir, resumed_from=self.resumed_from
        )
        while pos.epoch < cfg.epochs and not self._done():
            for batch in self.batches(pos.epoch, pos.step):
                if self._done():
                    break
                start = time.perf_counter()
                out = self.recipe.take_step(self.step, batch, pos)
                pos.step += 1
                pos.global_step += 1
                summary.history.append(self._report(out, batch, time.perf_counter() - start))
                if cfg.save_every and pos.global_step % cfg.save_every == 0:
                    self.save()
            if pos.step >= self.order.steps_per_epoch:
                pos.epoch, pos.step = pos.epoch + 1, 0
                if cfg.save_epoch and pos.epoch % cfg.save_epoch == 0:
                    self.save(tag=self.recipe.epoch_tag(pos.epoch))
        self.save()
        self.log.close()
        summary.global_step = pos.global_step
        summary.losses = summary.history[-1] if summary.history else {}
        return summary


def train(
    recipe: Recipe[StepT, PositionT, ResultT], ctx: DistContext | None = None
) -> TrainSummary:
    """Build a TrainingLoop for `recipe` and run it."""
    return TrainingLoop(recipe, ctx).run()
