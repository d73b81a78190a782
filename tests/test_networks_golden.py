"""Weight compatibility: our networks, filled by the golden rule, reproduce the official
outputs stored in `../shared/golden` (relative error below 1e-4, float32, CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from official_networks import OFFICIAL_NETWORKS

from ghost_engine import networks
from ghost_engine.networks.fill import fill_module

TOLERANCE = 1e-4
# Outputs compared here; the SR network's (batch statistics) are test_lipspade.py's.
GOLDEN_NAMES = [name for name in OFFICIAL_NETWORKS if name != "sr_lipspade"]


def rel_err(out: torch.Tensor, ref: np.ndarray) -> float:
    return float(np.linalg.norm(out.detach().numpy() - ref) / np.linalg.norm(ref))


def _manifest(golden: Path, name: str) -> dict:
    return json.loads((golden / f"{name}.manifest.json").read_text())


@pytest.mark.parametrize("name", OFFICIAL_NETWORKS)
def test_state_dict_layout_matches_official(golden: Path, name: str) -> None:
    """Same keys, in the same order, with the same shapes and dtypes as the official file."""
    expected = [(k, tuple(s), d) for k, s, d in _manifest(golden, name)["state_dict"]]
    got = [
        (k, tuple(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in networks.build(name).state_dict().items()
    ]
    assert got == expected


@pytest.mark.parametrize("name", GOLDEN_NAMES)
def test_output_matches_golden(golden: Path, name: str) -> None:
    torch.manual_seed(0)
    net = fill_module(networks.build(name))
    io = np.load(golden / f"{name}.io.npz")
    with torch.no_grad():
        if name.startswith("G_"):
            y, attrs = net(torch.from_numpy(io["Xt"]), torch.from_numpy(io["z_id"]))
            assert rel_err(y, io["Y"]) < TOLERANCE
            levels = [i for i in range(1, 9) if f"z_attr{i}" in io]
            if name == "G_unet_2blocks":
                assert levels == [1, 2, 3, 4, 5, 6]
            for i in levels:
                assert rel_err(attrs[i - 1], io[f"z_attr{i}"]) < TOLERANCE, f"z_attr{i}"
        elif name == "D_unet":
            outs = net(torch.from_numpy(io["x"]))
            assert len(outs) == 3
            for i, scale in enumerate(outs):
                assert rel_err(scale[0], io[f"out{i}"]) < TOLERANCE, f"scale {i}"
        elif name == "arcface_iresnet100":
            assert rel_err(net(torch.from_numpy(io["x"])), io["embedding"]) < TOLERANCE
        elif name == "fan_wflw_4hg":
            heat = net(torch.from_numpy(io["x"]))
            assert len(heat) == 4
            assert rel_err(heat[-1], io["heatmaps_last"]) < TOLERANCE


def test_a_wrong_weight_is_caught(golden: Path) -> None:
    """The comparison is sensitive: one perturbed tensor breaks the match."""
    net = fill_module(networks.build("D_unet"))
    with torch.no_grad():
        net.layer2[0].weight.mul_(1.01)
        out = net(torch.from_numpy(np.load(golden / "D_unet.io.npz")["x"]))
    assert rel_err(out[0][0], np.load(golden / "D_unet.io.npz")["out0"]) > TOLERANCE


@pytest.mark.parametrize(
    ("name", "params_m"),
    [
        ("G_unet_2blocks", 184),
        ("G_unet_1blocks", 128),
        ("G_unet_3blocks", 240),
        ("arcface_iresnet100", 65),
        ("D_unet", 33),
    ],
)
def test_parameter_counts_match_design(name: str, params_m: int) -> None:
    """The cost model's parameter counts (DESIGN.md section 6), to the million."""
    count = sum(p.numel() for p in networks.build(name).parameters())
    assert round(count / 1e6) == params_m or abs(count / 1e6 - params_m) < 1.0
