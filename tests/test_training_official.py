"""One stage-2 step (every loss term, eye loss included) on the official-size networks
with random fill-rule weights, batch 1: AEI-Net 2 blocks, the multiscale discriminator,
ArcFace iresnet100 and FAN WFLW 4HG. About a minute on 2 CPU cores. And the official
initialisation of that generator, checked against the distributions it must draw from."""

from __future__ import annotations

import math

import cv2
import pytest
import torch

from ghost_engine.networks.aei_net import AEINet, init_official
from ghost_engine.training import config as cfgmod
from ghost_engine.training.prepare import PrepareConfig, prepare_dataset
from ghost_engine.training.run_config import merge
from ghost_engine.training.swap_recipe import SwapRecipe
from ghost_engine.training.train_loop import TrainingLoop


@pytest.mark.slow
def test_official_networks_stage2_step(media, tmp_path):
    torch.set_num_threads(1)
    src = tmp_path / "src"
    for name in ("source1", "target1"):
        (src / name).mkdir(parents=True)
        cv2.imwrite(str(src / name / "a.png"), cv2.imread(str(media / "aligned" / f"{name}.png")))
    prepare_dataset(src, tmp_path / "data", PrepareConfig(aligned=True, workers=1))
    cfg = merge(
        cfgmod.stage2(),
        {
            "model": {"allow_random_frozen": True},
            "data": {"root": str(tmp_path / "data"), "workers": 0, "same_prob": 1.0},
            "batch_size": 1,
            "out_dir": str(tmp_path / "run"),
            "tensorboard": False,
        },
    )
    trainer = TrainingLoop(SwapRecipe(cfg))
    assert isinstance(trainer.nets.generator, AEINet)  # the official layout itself
    before = trainer.nets.generator.generator.AADBlk8.add_blocks[2].weight.detach().clone()
    batch = next(trainer.batches(0, 0))
    out = trainer.step(batch, cfg.optim.adv_accumulated_init)
    for term in ("adv", "attr", "id", "rec", "eyes", "loss_g", "loss_d"):
        assert math.isfinite(out.losses[term]), term
    assert out.losses["rec"] > 0 and out.losses["eyes"] > 0 and out.d_stepped
    w = cfg.weights
    expect = sum(getattr(w, k) * out.losses[k] for k in ("adv", "attr", "id", "rec", "eyes"))
    assert out.losses["loss_g"] == pytest.approx(expect, rel=1e-4)
    after = trainer.nets.generator.generator.AADBlk8.add_blocks[2].weight
    assert not torch.equal(before, after)
    assert out.y.shape == (1, 3, 256, 256) and out.eyes_y.shape == (1, 2, 2)


def _xavier_std(weight: torch.Tensor) -> float:
    """xavier-normal's sqrt(2 / (fan_in + fan_out)) from a weight's shape alone: a conv's
    (out, in, k, k) and a transposed conv's (in, out, k, k) both give (in + out) * k * k."""
    return math.sqrt(2.0 / ((weight.shape[0] + weight.shape[1]) * math.prod(weight.shape[2:])))


def _std_tolerance(n: int) -> float:
    """Relative tolerance of an n-sample std: 5%, or six standard errors (1/sqrt(2n) of
    the std for normal samples) where that is wider (tensors under 7,200 elements)."""
    return max(0.05, 6.0 / math.sqrt(2.0 * n))


def _check_normal(w: torch.Tensor, std: float, what: str) -> None:
    """`w` looks drawn from N(0, std^2): its std, mean and (over 10k elements) kurtosis.

    Raw moments summed in float64 (float32 sums of 9M squares drift by 1e-4)."""
    x = w.detach().flatten()
    n = x.numel()
    mean = x.sum(dtype=torch.float64).item() / n
    x2 = x.square()
    m2 = x2.sum(dtype=torch.float64).item() / n
    sample_std = math.sqrt(max(m2 - mean * mean, 0.0))
    assert abs(sample_std / std - 1.0) <= _std_tolerance(n), (what, sample_std, std)
    assert abs(mean) <= 6.0 * std / math.sqrt(n), (what, mean)
    if n > 10_000:  # normal, not uniform: kurtosis 3 (uniform: 1.8), six standard errors
        kurtosis = x2.square_().sum(dtype=torch.float64).item() / n / m2**2
        assert abs(kurtosis - 3.0) <= 6.0 * math.sqrt(24.0 / n), (what, kurtosis)


@pytest.mark.slow
def test_official_init_statistics():
    # the published generator (U-Net, 2 blocks; LinkNet differs only in widths): 184M
    # parameters, about 6 s on one core
    torch.manual_seed(0)
    net = AEINet("unet", num_blocks=2)
    layers = (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)
    before = {  # all but the weights init_official draws (those are 184M numbers)
        f"{name}.{key}": p.clone()
        for name, m in net.named_modules()
        for key, p in m.named_parameters(recurse=False)
        if not (isinstance(m, layers) and key == "weight")
    }
    init_official(net)
    checked: set[str] = set()
    counts = {"conv": 0, "deconv": 0, "linear": 0}
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            counts["deconv" if isinstance(m, torch.nn.ConvTranspose2d) else "conv"] += 1
            _check_normal(m.weight, _xavier_std(m.weight), name)
            checked.add(f"{name}.weight")
            if m.bias is not None:  # the official weight_init leaves conv biases as built
                assert torch.equal(m.bias, before[f"{name}.bias"]), name
                checked.add(f"{name}.bias")
        elif isinstance(m, torch.nn.Linear):
            counts["linear"] += 1
            _check_normal(m.weight, 0.001, name)
            assert torch.count_nonzero(m.bias) == 0, name
            checked |= {f"{name}.weight", f"{name}.bias"}
    for name, p in net.named_parameters():  # the rest (BatchNorm affine) is untouched
        if name not in checked:
            assert torch.equal(p, before[name]), name
    # 21 AAD units (2 in each of the 8 blocks, and a residual one in the 5 blocks that change
    # channels), each 3 convs and 2 linears in its AAD layer and a 3x3 conv; the encoder's
    # 7 convs and 6 deconvs, and up1
    units = 8 * 2 + 5
    assert counts == {"conv": 7 + 4 * units, "deconv": 6 + 1, "linear": 2 * units}
