"""What both adversarial training steps share: the optimisers, mixed precision, one update.

A step trains the generator, then the discriminator, each with its own Adam, optional
learning-rate schedule and grad scaler (active for fp16 only; bf16 and fp32 need none).
`AdversarialStep` binds a step to a run's networks, optimisers, config and process: its
`g`/`d` may be DistributedDataParallel wrappers of the bare modules in `nets`, so a step
calls the wrappers where gradients must be reduced and the bare modules elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ghost_engine.training.distributed import DistContext

# torch.autocast dtype per precision; fp32 runs without autocast
AUTOCAST_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
Scheduler = torch.optim.lr_scheduler.LRScheduler


@dataclass
class Optimisers:
    """Both optimisers with their (optional) schedulers and grad scalers."""

    g: torch.optim.Optimizer
    d: torch.optim.Optimizer
    sched_g: Scheduler | None
    sched_d: Scheduler | None
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (a scheduler that is off saves `{}`)."""
        return {
            "opt_g": self.g.state_dict(),
            "opt_d": self.d.state_dict(),
            "sched_g": self.sched_g.state_dict() if self.sched_g else {},
            "sched_d": self.sched_d.state_dict() if self.sched_d else {},
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s values (saved schedules load only into schedulers)."""
        self.g.load_state_dict(state["opt_g"])
        self.d.load_state_dict(state["opt_d"])
        if self.sched_g is not None and self.sched_d is not None and state.get("sched_g"):
            self.sched_g.load_state_dict(state["sched_g"])
            self.sched_d.load_state_dict(state["sched_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])


@dataclass(frozen=True)
class AdamSettings:
    """How a recipe's optimisers are made: Adam for G and D at `lr` (G's, D's) with
    `betas`, `eps` and `weight_decay`; StepLR (every, gamma) when `step_lr` is set; grad
    scalers starting at `loss_scale_init` (used by fp16 only)."""

    lr: tuple[float, float]
    betas: tuple[float, float]
    eps: float = 1e-8
    weight_decay: float = 0.0
    step_lr: tuple[int, float] | None = None
    loss_scale_init: float = 65536.0


def adam_optimisers(
    generator: nn.Module,
    discriminator: nn.Module,
    device: torch.device,
    precision: str,
    settings: AdamSettings,
) -> Optimisers:
    """G's and D's optimisers, schedulers and grad scalers (active for fp16 only)."""
    s = settings

    def adam(module: nn.Module, rate: float) -> torch.optim.Adam:
        return torch.optim.Adam(
            module.parameters(), lr=rate, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay
        )

    def schedule(opt: torch.optim.Optimizer) -> Scheduler | None:
        if s.step_lr is None:
            return None
        return torch.optim.lr_scheduler.StepLR(opt, s.step_lr[0], gamma=s.step_lr[1])

    def scaler() -> torch.amp.GradScaler:
        return torch.amp.GradScaler(device.type, s.loss_scale_init, enabled=precision == "fp16")

    opt_g, opt_d = adam(generator, s.lr[0]), adam(discriminator, s.lr[1])
    return Optimisers(opt_g, opt_d, schedule(opt_g), schedule(opt_d), scaler(), scaler())


def scaled_update(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    scheduler: Scheduler | None,
    *,
    step: bool = True,
) -> None:
    """Backward through the scaled `loss`, then (if `step`) the optimiser and scaler step;
    the schedule advances either way, as the official loop's does."""
    scaler.scale(loss).backward()
    if step:
        scaler.step(optimizer)
        scaler.update()
    if scheduler is not None:
        scheduler.step()


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for `module`'s parameters inside the block (their flags restored after)."""
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)


class AdversarialStep:
    """A training step bound to a run: `nets`, the (maybe wrapped) `g` and `d`, the
    optimisers, the config (its `precision` picks autocast) and the process context."""

    def __init__(
        self,
        nets: Any,
        generator: nn.Module,
        discriminator: nn.Module,
        optim: Optimisers,
        config: Any,
        ctx: DistContext,
    ) -> None:
        self.nets, self.g, self.d = nets, generator, discriminator
        self.optim, self.cfg, self.ctx = optim, config, ctx
        self.autocast_dtype = AUTOCAST_DTYPES.get(config.precision)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to the run's half precision on its device (nothing for fp32)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.ctx.device.type, dtype=self.autocast_dtype)
