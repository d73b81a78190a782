"""Process-group setup for data-parallel training launched by `torchrun`.

`torchrun` sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous variables; a plain
`python`/`ghost-engine` call has none of them and runs as a single process. NCCL on
GPUs, gloo on CPUs, over as many nodes as torchrun was given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ghost_engine.errors import UserInputError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits: rank of world, and the device it trains on."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def pick_device(requested: str, local_rank: int) -> torch.device:
    """'auto' -> this process's GPU if any, else the CPU; 'cpu'/'cuda' force one."""
    if requested not in ("auto", "cpu", "cuda"):
        raise UserInputError(f"device must be auto, cpu or cuda, got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserInputError("device 'cuda' asked for but no CUDA GPU is visible")
    if requested != "cpu" and torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(requested_device: str = "auto") -> DistContext:
    """Join torchrun's process group if there is one; a single process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(requested_device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistContext(rank=rank, world=world, local_rank=local_rank, device=device)


def all_reduce_sum(x: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum over processes (a copy; identity for a single process)."""
    x = x.detach().clone()
    if ctx.active:
        dist.all_reduce(x)
    return x


def barrier(ctx: DistContext) -> None:
    if ctx.active:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.active and dist.is_initialized():
        dist.destroy_process_group()
