"""`ghost-engine convert`: check a checkpoint against a network and write safetensors."""

from __future__ import annotations

from pathlib import Path

import click

from ghost_engine import networks
from ghost_engine.networks.checkpoint import load_into


@click.command("convert")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--network",
    "network_name",
    required=True,
    type=click.Choice(networks.names()),
    help="Which network the checkpoint is for.",
)
def convert(checkpoint: Path, network_name: str) -> None:
    """Load CHECKPOINT safely and strictly, and write CHECKPOINT.safetensors beside it.

    Later runs read the safetensors file, which loads faster and can hold no code.
    """
    net = networks.build(network_name)
    load_into(net, checkpoint, network_name=network_name, convert=True)
    out = checkpoint.with_suffix(".safetensors")
    count = sum(p.numel() for p in net.state_dict().values())
    click.echo(f"{checkpoint} fits {network_name} ({count / 1e6:.1f} M values); wrote {out}")
