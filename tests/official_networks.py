"""The registered networks that have official checkpoints, for the network tests.

One list, so the checkpoint round trips and the golden layout checks cover the same set.
"""

from __future__ import annotations

# Every network the official code publishes weights for; each has a manifest of its
# state dict in ../shared/golden.
OFFICIAL_NETWORKS = (
    "G_unet_1blocks",
    "G_unet_2blocks",
    "G_unet_3blocks",
    "D_unet",
    "arcface_iresnet100",
    "fan_wflw_4hg",
    "sr_lipspade",
)
