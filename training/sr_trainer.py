"""The renovation training loop: setup, exact resume, epochs of `SRStep`, logs, weights.

The engineering is the face-swap training's (imported, not repeated): torchrun process
groups and device choice (`distributed`), atomic checkpoints with every RNG state
(`checkpoint`), deterministic resumable batch order (`EpochOrder`), `metrics.jsonl` plus
TensorBoard and PNG sample grids (`RunLog`), amp grad scalers (`Optimisers`). Weights
are also written in the official layout and naming: `latest_net_G.pth`,
`<epoch>_net_G.pth` (GHOST's `10_net_G.pth` is epoch 10), loadable with
`ghost_engine.networks.load("sr_lipspade", path)` when the layout is official.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from ghost_engine.errors import CheckpointError, UserInputError
from ghost_engine.networks.checkpoint import read_state_dict
from ghost_engine.runtime import devices
from ghost_engine.training import run_state as ckpt
from ghost_engine.training.config import to_dict
from ghost_engine.training.dataset import EpochOrder
from ghost_engine.training.distributed import DistContext, barrier, init_distributed
from ghost_engine.training.monitor import RunLog, to_uint8
from ghost_engine.training.sr_config import SRTrainConfig
from ghost_engine.training.sr_data import DegradedFaces
from ghost_engine.training.sr_networks import SRNetworks, build_sr_networks, use_global_batchnorm
from ghost_engine.training.sr_step import SRStep, SRStepOutput
from ghost_engine.training.step import Optimisers
from ghost_engine.training.trainer import TrainSummary

log = logging.getLogger(__name__)


@dataclass
class SRPosition:
    """The next step to take is `step` of `epoch`."""

    epoch: int = 0
    step: int = 0
    global_step: int = 0


# What `SRTrainer.run` did: the same record as the face-swap trainer's.
SRSummary = TrainSummary


def make_optimisers(nets: SRNetworks, cfg: SRTrainConfig, device: torch.device) -> Optimisers:
    """Adam for G and D with the recipe's rates; grad scalers active for fp16 only."""
    o, fp16 = cfg.optim, cfg.precision == "fp16"
    return Optimisers(
        g=torch.optim.Adam(nets.generator.parameters(), lr=o.lr_g, betas=o.betas),
        d=torch.optim.Adam(nets.discriminator.parameters(), lr=o.lr_d, betas=o.betas),
        sched_g=None,
        sched_d=None,
        scaler_g=torch.amp.GradScaler(device.type, enabled=fp16),
        scaler_d=torch.amp.GradScaler(device.type, enabled=fp16),
    )


def _load_weights(module: torch.nn.Module, path: str, what: str) -> None:
    try:
        module.load_state_dict(read_state_dict(path), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path} does not fit the {what} of this config ({str(exc).splitlines()[0]}); "
            "check the model.* settings match the run that wrote it"
        ) from None


def sample_grid(batch: dict[str, torch.Tensor], fake: torch.Tensor, rows: int = 4) -> np.ndarray:
    """One row per sample: degraded | renovated | clean, RGB uint8."""
    n = min(rows, fake.shape[0])
    cols = [to_uint8(t[:n].float() * 2 - 1) for t in (batch["lq"], fake, batch["hq"])]
    return np.concatenate([np.concatenate([c[i] for c in cols], axis=1) for i in range(n)])


class SRTrainer:
    """A configured run; `run()` trains until `epochs` (or `max_steps`) and saves."""

    def __init__(self, config: SRTrainConfig, ctx: DistContext | None = None) -> None:
        if not config.data.root:
            raise UserInputError("no dataset: set data.root (train sr --data DIR)")
        self.cfg = config
        self.ctx = ctx or init_distributed(config.device)
        self.out_dir = Path(config.out_dir)
        torch.manual_seed(config.seed)
        if config.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        self.nets = self._build()
        self.optim = make_optimisers(self.nets, config, self.ctx.device)
        self.dataset = DegradedFaces(config.data, config.model.image_size, config.seed)
        self.order = EpochOrder(
            len(self.dataset), config.batch_size, config.seed, self.ctx.rank, self.ctx.world
        )
        self.position = SRPosition()
        self.resumed_from: int | None = None
        if config.resume and (self.out_dir / ckpt.STATE_NAME).is_file():
            self._resume(self.out_dir / ckpt.STATE_NAME)
        g, d = self.nets.generator, self.nets.discriminator
        if self.ctx.active:
            ids = devices.device_ids(self.ctx.device)
            g = DistributedDataParallel(g, device_ids=ids, broadcast_buffers=False)
            d = DistributedDataParallel(d, device_ids=ids)
        self.step = SRStep(self.nets, g, d, self.optim, config, self.ctx)
        self.log = RunLog(self.out_dir, enabled=self.ctx.main, tensorboard=config.tensorboard)

    def _build(self) -> SRNetworks:
        cfg = self.cfg
        nets = build_sr_networks(cfg.model)
        if cfg.init_g:
            _load_weights(nets.generator, cfg.init_g, "generator")
        if cfg.init_d:
            _load_weights(nets.discriminator, cfg.init_d, "discriminator")
        if self.ctx.active and cfg.model.sync_bn:
            use_global_batchnorm(nets.generator)
        for module in (nets.generator, nets.discriminator, nets.perceptual):
            if module is not None:
                module.to(self.ctx.device)
        return nets

    # --- checkpoints ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        o = self.optim
        return {
            "generator": self.nets.generator.state_dict(),
            "discriminator": self.nets.discriminator.state_dict(),
            "opt_g": o.g.state_dict(),
            "opt_d": o.d.state_dict(),
            "scaler_g": o.scaler_g.state_dict(),
            "scaler_d": o.scaler_d.state_dict(),
            "rng": ckpt.rng_state(),
            "position": dataclasses.asdict(self.position),
            "config": to_dict(self.cfg),
            "world": self.ctx.world,
        }

    def _resume(self, path: Path) -> None:
        state = ckpt.load_state(path)
        if state["config"]["model"] != dataclasses.asdict(self.cfg.model):
            raise CheckpointError(
                f"{path} was written with different model settings; resume with the same "
                "model.* settings or use another out_dir"
            )
        self.nets.generator.load_state_dict(state["generator"])
        self.nets.discriminator.load_state_dict(state["discriminator"])
        o = self.optim
        o.g.load_state_dict(state["opt_g"])
        o.d.load_state_dict(state["opt_d"])
        o.scaler_g.load_state_dict(state["scaler_g"])
        o.scaler_d.load_state_dict(state["scaler_d"])
        ckpt.set_rng_state(state["rng"])
        self.position = SRPosition(**state["position"])
        self.resumed_from = self.position.global_step
        log.info("resumed %s at step %d", path, self.position.global_step)

    def _export(self, tag: str) -> None:
        for net, name in ((self.nets.generator, "G"), (self.nets.discriminator, "D")):
            ckpt.write_weights(self.out_dir / f"{tag}_net_{name}.pth", net)

    def save(self, tag: str | None = None) -> None:
        """Resume point and official-layout weights (`latest`, and `tag`), main process."""
        if self.ctx.main:
            ckpt.save_state(self.out_dir, self.state())
            self._export("latest")
            if tag:
                self._export(tag)
        barrier(self.ctx)

    # --- loop ----------------------------------------------------------------------------

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

    def _report(self, out: SRStepOutput, batch: dict, seconds: float) -> dict[str, float]:
        values = dict(out.losses)
        values["lr_g"] = self.optim.g.param_groups[0]["lr"]
        values["lr_d"] = self.optim.d.param_groups[0]["lr"]
        values["images_per_s"] = self.cfg.batch_size / max(seconds, 1e-9)
        step = self.position.global_step
        if self.cfg.log_every and step % self.cfg.log_every == 0:
            self.log.scalars(step, values)
        if self.cfg.image_every and step % self.cfg.image_every == 0:
            self.log.image(step, sample_grid(batch, out.fake))
        return values

    def _done(self) -> bool:
        return bool(self.cfg.max_steps) and self.position.global_step >= self.cfg.max_steps

    def run(self) -> SRSummary:
        cfg, pos = self.cfg, self.position
        summary = SRSummary(pos.global_step, out_dir=self.out_dir, resumed_from=self.resumed_from)
        while pos.epoch < cfg.epochs and not self._done():
            for batch in self._batches(pos.epoch, pos.step):
                if self._done():
                    break
                start = time.perf_counter()
                out = self.step(batch)
                pos.step += 1
                pos.global_step += 1
                summary.history.append(self._report(out, batch, time.perf_counter() - start))
                if cfg.save_every and pos.global_step % cfg.save_every == 0:
                    self.save()
            if pos.step >= self.order.steps_per_epoch:
                pos.epoch, pos.step = pos.epoch + 1, 0
                if cfg.save_epoch and pos.epoch % cfg.save_epoch == 0:
                    self.save(tag=str(pos.epoch))
        self.save()
        self.log.close()
        summary.global_step = pos.global_step
        summary.losses = summary.history[-1] if summary.history else {}
        return summary


def train_sr(config: SRTrainConfig, ctx: DistContext | None = None) -> SRSummary:
    """Build an SRTrainer for `config` and run it."""
    return SRTrainer(config, ctx).run()
