"""The training loop: setup, resume, epochs of `GanStep`, logs and checkpoints.

Single process or data parallel under `torchrun` (one process per GPU, or gloo on CPUs):
the global batch is split evenly, gradients are averaged by DistributedDataParallel,
BatchNorm statistics are shared (`sync_bn`), and masked losses use global counts, so K
steps on P processes train the same weights as one process with the whole batch.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ghost_engine.errors import CheckpointError, UserInputError
from ghost_engine.networks.checkpoint import read_state_dict
from ghost_engine.runtime import devices
from ghost_engine.training import run_state as ckpt
from ghost_engine.training.config import TrainConfig, to_dict
from ghost_engine.training.dataset import EpochOrder, PairDataset
from ghost_engine.training.distributed import DistContext, barrier, init_distributed
from ghost_engine.training.monitor import RunLog, image_grid
from ghost_engine.training.step import GanStep, Optimisers, StepOutput
from ghost_engine.training.sync_bn import convert_batchnorm
from ghost_engine.training.variants import Networks, build_networks

log = logging.getLogger(__name__)


@dataclass
class Position:
    """Where the run is: the next step to take is `step` of `epoch`."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0
    adv_accumulated: float = 20.0


@dataclass
class TrainSummary:
    """What `Trainer.run` did: steps taken, last losses, where the files are."""

    global_step: int
    losses: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    out_dir: Path = Path(".")
    resumed_from: int | None = None


def _load_weights(module: torch.nn.Module, path: str, what: str) -> None:
    state = read_state_dict(path)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} does not fit the {what} of this config ({str(exc).splitlines()[0]}); "
            "check model.* settings match the run that wrote it"
        ) from None


def _optimisers(nets: Networks, cfg: TrainConfig, device: torch.device) -> Optimisers:
    o = cfg.optim

    def adam(module: torch.nn.Module, lr: float) -> torch.optim.Adam:
        return torch.optim.Adam(
            module.parameters(), lr=lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay
        )

    opt_g, opt_d = adam(nets.generator, o.lr_g), adam(nets.discriminator, o.lr_d)

    def sched(opt: torch.optim.Optimizer):
        if not o.scheduler:
            return None
        return torch.optim.lr_scheduler.StepLR(opt, o.scheduler_step, gamma=o.scheduler_gamma)

    fp16 = cfg.precision == "fp16"
    return Optimisers(
        g=opt_g,
        d=opt_d,
        sched_g=sched(opt_g),
        sched_d=sched(opt_d),
        scaler_g=torch.amp.GradScaler(device.type, o.loss_scale_init, enabled=fp16),
        scaler_d=torch.amp.GradScaler(device.type, o.loss_scale_init, enabled=fp16),
    )


class Trainer:
    """A configured run; `run()` trains until `epochs` (or `max_steps`) and saves."""

    def __init__(self, config: TrainConfig, ctx: DistContext | None = None) -> None:
        if not config.data.root:
            raise UserInputError("no dataset: set data.root (train swap --data DIR)")
        self.cfg = config
        self.ctx = ctx or init_distributed(config.device)
        self.out_dir = Path(config.out_dir)
        torch.manual_seed(config.seed)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.nets = self._build()
        self.optim = _optimisers(self.nets, config, self.ctx.device)
        self.dataset = PairDataset(
            config.data.root, config.data, config.model.image_size, config.seed
        )
        self.order = EpochOrder(
            len(self.dataset), config.batch_size, config.seed, self.ctx.rank, self.ctx.world
        )
        self.position = Position(adv_accumulated=config.optim.adv_accumulated_init)
        self.resumed_from: int | None = None
        if config.resume and (self.out_dir / ckpt.STATE_NAME).is_file():
            self._resume(self.out_dir / ckpt.STATE_NAME)
        g, d = self.nets.generator, self.nets.discriminator
        if self.ctx.active:
            ids = devices.device_ids(self.ctx.device)
            bcast = not config.model.sync_bn
            g = DistributedDataParallel(g, device_ids=ids, broadcast_buffers=bcast)
            d = DistributedDataParallel(d, device_ids=ids)
        self.step = GanStep(self.nets, g, d, self.optim, config, self.ctx)
        self.log = RunLog(self.out_dir, enabled=self.ctx.main, tensorboard=config.tensorboard)

    def _build(self) -> Networks:
        cfg = self.cfg
        nets = build_networks(cfg.model, eye_loss=cfg.eye_loss)
        if cfg.init_g:
            _load_weights(nets.generator, cfg.init_g, "generator")
        if cfg.init_d:
            _load_weights(nets.discriminator, cfg.init_d, "discriminator")
        if self.ctx.active and cfg.model.sync_bn:
            convert_batchnorm(nets.generator)
        dev = self.ctx.device
        nets.generator.to(dev)
        nets.discriminator.to(dev)
        nets.identity.to(dev)
        if nets.landmarks is not None:
            nets.landmarks.to(dev)
        return nets

    # --- checkpoints -------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        o = self.optim
        return {
            "generator": self.nets.generator.state_dict(),
            "discriminator": self.nets.discriminator.state_dict(),
            "opt_g": o.g.state_dict(),
            "opt_d": o.d.state_dict(),
            "sched_g": o.sched_g.state_dict() if o.sched_g else {},
            "sched_d": o.sched_d.state_dict() if o.sched_d else {},
            "scaler_g": o.scaler_g.state_dict(),
            "scaler_d": o.scaler_d.state_dict(),
            "rng": ckpt.rng_state(),
            "position": dataclasses.asdict(self.position),
            "config": to_dict(self.cfg),
            "world": self.ctx.world,
        }

    def _resume(self, path: Path) -> None:
        state = ckpt.load_state(path)
        saved_model = state["config"]["model"]
        if saved_model != dataclasses.asdict(self.cfg.model):
            raise CheckpointError(
                f"{path} was written with different model settings; resume with the same "
                "model.* settings or use another out_dir"
            )
        self.nets.generator.load_state_dict(state["generator"])
        self.nets.discriminator.load_state_dict(state["discriminator"])
        o = self.optim
        o.g.load_state_dict(state["opt_g"])
        o.d.load_state_dict(state["opt_d"])
        if o.sched_g is not None and state["sched_g"]:
            o.sched_g.load_state_dict(state["sched_g"])
            o.sched_d.load_state_dict(state["sched_d"])
        o.scaler_g.load_state_dict(state["scaler_g"])
        o.scaler_d.load_state_dict(state["scaler_d"])
        ckpt.set_rng_state(state["rng"])
        self.position = Position(**state["position"])
        self.resumed_from = self.position.global_step
        log.info("resumed %s at step %d", path, self.position.global_step)

    def save(self, tag: str | None = None) -> None:
        """Training state (resume point) and official-layout G/D weights, main process only."""
        if self.ctx.main:
            state = self.state()
            ckpt.save_state(self.out_dir, state)
            for name in ("latest", tag) if tag else ("latest",):
                ckpt.write_weights(self.out_dir / f"G_{name}.pth", self.nets.generator)
                ckpt.write_weights(self.out_dir / f"D_{name}.pth", self.nets.discriminator)
        barrier(self.ctx)

    # --- loop -----------------------------------------------------------------------------

    def _batches(self, epoch: int, first_step: int):
        loader = DataLoader(
            self.dataset,
            batch_sampler=list(self.order.batches(epoch, first_step)),
            num_workers=self.cfg.data.workers,
            pin_memory=devices.is_gpu(self.ctx.device),
        )
        dev = self.ctx.device
        for batch in loader:
            yield {k: v.to(dev, non_blocking=True) for k, v in batch.items()}

    def _report(self, out: StepOutput, batch: dict[str, torch.Tensor], seconds: float) -> dict:
        values = dict(out.losses)
        values["adv_accumulated"] = out.adv_accumulated
        values["d_stepped"] = float(out.d_stepped)
        values["lr_g"] = self.optim.g.param_groups[0]["lr"]
        values["lr_d"] = self.optim.d.param_groups[0]["lr"]
        values["images_per_s"] = self.cfg.batch_size / max(seconds, 1e-9)
        step = self.position.global_step
        if self.cfg.log_every and step % self.cfg.log_every == 0:
            self.log.scalars(step, values)
        if self.cfg.image_every and step % self.cfg.image_every == 0:
            grid = image_grid(batch["xs224"], batch["xt"], out.y, out.eyes_t, out.eyes_y)
            self.log.image(step, grid)
        return values

    def _done(self) -> bool:
        return bool(self.cfg.max_steps) and self.position.global_step >= self.cfg.max_steps

    def run(self) -> TrainSummary:
        cfg, pos = self.cfg, self.position
        summary = TrainSummary(
            pos.global_step, out_dir=self.out_dir, resumed_from=self.resumed_from
        )
        while pos.epoch < cfg.epochs and not self._done():
            for batch in self._batches(pos.epoch, pos.step):
                if self._done():
                    break
                start = time.perf_counter()
                out = self.step(batch, pos.adv_accumulated)
                pos.adv_accumulated = out.adv_accumulated
                pos.step += 1
                pos.global_step += 1
                values = self._report(out, batch, time.perf_counter() - start)
                summary.history.append(values)
                if cfg.save_every and pos.global_step % cfg.save_every == 0:
                    self.save()
            if pos.step >= self.order.steps_per_epoch:
                pos.epoch, pos.step = pos.epoch + 1, 0
                if cfg.save_epoch and pos.epoch % cfg.save_epoch == 0:
                    self.save(tag=f"epoch{pos.epoch:03d}")
        self.save()
        self.log.close()
        summary.global_step = pos.global_step
        summary.losses = summary.history[-1] if summary.history else {}
        return summary


def train(config: TrainConfig, ctx: DistContext | None = None) -> TrainSummary:
    """Build a Trainer for `config` and run it."""
    return Trainer(config, ctx).run()
