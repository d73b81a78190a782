"""Process-group setup for data-parallel training launched by `torchrun`.

`torchrun` sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous variables; a plain
`python`/`ghost-engine` call has none of them and runs as a single process. The device
and the collective backend for it (NCCL on GPUs, Gloo on CPUs) come from
`ghost_engine.runtime.devices`, over as many nodes as torchrun was given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ghost_engine.runtime import devices


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank of world, and the device it trains on."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device(devices.CPU)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def init_distributed(requested_device: str = "auto") -> DistContext:
    """Join torchrun's process group if there is one; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = devices.training_device(requested_device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = devices.collective_backend(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank=rank, world=world, local_rank=local_rank, device=device)


def is_distributed() -> bool:
    """Whether a process group of more than one process is running (never, where torch
    is built without distributed support: it then has no `is_initialized`)."""
    initialized = getattr(dist, "is_initialized", None)
    return initialized is not None and initialized() and dist.get_world_size() > 1


def all_reduce_sum(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum over processes (a copy; identity for a single process)."""
    x = x.detach().clone()
    if ctx.active:
        dist.all_reduce(x)
    return x


def global_means(
    names: tuple[str, ...], values: list[torch.Tensor], ctx: DistContext
) -> dict[str, float]:
    """Scalar `values` averaged over processes, by name (one all-reduce for all of them)."""
    stacked = torch.stack([v.detach().float() for v in values])
    stacked = all_reduce_sum(stacked, ctx) / ctx.world
    return dict(zip(names, stacked.tolist(), strict=True))


def barrier(ctx: DistContext) -> None:
    """Wait for every process (no-op for a single process)."""
    if ctx.active:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Leave the process group, if this run joined one."""
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
