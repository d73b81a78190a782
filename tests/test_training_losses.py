"""Each GHOST loss term against values computed by hand on small tensors, plus the
pieces the terms rely on: colour jitter vs PIL, config overrides, the scaled layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ghost_engine.errors import UserInputError
from ghost_engine.networks.aei_net import AEINet
from ghost_engine.training import config as cfgmod
from ghost_engine.training import losses
from ghost_engine.training.augment import (
    adjust_brightness,
    adjust_contrast,
    adjust_saturation,
    color_jitter,
)
from ghost_engine.training.run_config import merge, parse_overrides, read_file, to_dict
from ghost_engine.training.variants import ScaledAEINet


def _const(values: list[float], hw: int = 3) -> torch.Tensor:
    """(N, 1, hw, hw) maps, sample i filled with values[i]."""
    return torch.tensor(values).view(-1, 1, 1, 1).expand(-1, 1, hw, hw).clone()


def test_hinge_both_sides():
    x = torch.tensor([-2.0, 0.0, 0.5, 3.0])
    assert losses.hinge(x, real=True).tolist() == [3.0, 1.0, 0.5, 0.0]
    assert losses.hinge(x, real=False).tolist() == [0.0, 1.0, 1.5, 4.0]


def test_adversarial_loss_sums_scales_and_masks():
    # scale 1: D = 0.5, -1 -> relu(1-D) = 0.5, 2 ; scale 2: D = 2, 0 -> 0, 1
    d_fake = [[_const([0.5, -1.0])], [_const([2.0, 0.0], hw=2)]]
    all_pairs = losses.adversarial_loss(d_fake, torch.ones(2))
    assert all_pairs.item() == pytest.approx((0.5 + 3.0) / (2 + 1e-4), rel=1e-6)
    only_second = losses.adversarial_loss(d_fake, torch.tensor([0.0, 1.0]))
    assert only_second.item() == pytest.approx(3.0 / (1 + 1e-4), rel=1e-6)


def test_discriminator_loss_hand_value():
    d_fake = [[_const([0.5, -3.0])], [_const([0.0, 1.0])]]  # relu(1+D): 1.5, 0 ; 1, 2
    d_real = [[_const([0.5, 2.0])], [_const([-1.0, 0.0])]]  # relu(1-D): 0.5, 0 ; 2, 1
    got = losses.discriminator_loss(d_fake, d_real, torch.ones(2))
    fake = (1.5 + 0.0 + 1.0 + 2.0) / (2 + 1e-4)
    real = (0.5 + 0.0 + 2.0 + 1.0) / (2 + 1e-4)
    assert got.item() == pytest.approx(0.5 * (fake + real), rel=1e-6)


def test_attribute_loss_hand_value():
    a1 = torch.zeros(2, 2, 2, 2)
    b1 = torch.stack([torch.full((2, 2, 2), 1.0), torch.full((2, 2, 2), 3.0)])  # MSE 1, 9
    a2, b2 = torch.zeros(2, 4, 1, 1), torch.full((2, 4, 1, 1), 2.0)  # MSE 4, 4
    got = losses.attribute_loss([a1, a2], [b1, b2])
    assert got.item() == pytest.approx(0.5 * ((1 + 9) / 2 + 4), rel=1e-6)
    with pytest.raises(ValueError):
        losses.attribute_loss([a1], [b1, b2])


def test_identity_loss_hand_value():
    z_src = torch.tensor([[1.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
    z_y = torch.tensor([[0.0, 1.0], [2.0, 2.0], [-1.0, 0.0]])  # cos 0, 1, -1
    assert losses.identity_loss(z_src, z_y).item() == pytest.approx((1 + 0 + 2) / 3, rel=1e-6)


def test_reconstruction_loss_only_same_pairs():
    xt = torch.zeros(2, 3, 4, 4)
    y = torch.stack([torch.full((3, 4, 4), 2.0), torch.full((3, 4, 4), 4.0)])
    got = losses.reconstruction_loss(y, xt, torch.tensor([1, 0]))
    assert got.item() == pytest.approx(0.5 * 4.0 / (1 + 1e-6), rel=1e-6)
    none = losses.reconstruction_loss(y, xt, torch.tensor([0, 0]))
    assert none.item() == 0.0


def test_eye_loss_hand_value():
    heat_t = torch.zeros(2, 2, 4, 4)
    heat_y = torch.zeros(2, 2, 4, 4)
    heat_y[:, 0] = 1.0  # left MSE 1
    heat_y[0, 1] = 2.0  # right: 4 on half the batch -> MSE 2
    assert losses.eye_loss(heat_t, heat_y).item() == pytest.approx(1.0 + 2.0)
    with pytest.raises(ValueError):
        losses.eye_loss(heat_t[:, :1], heat_y[:, :1])


def test_masked_mean_over_processes_equals_combined_batch():
    values = torch.tensor([1.0, 2.0, 3.0, 5.0])
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0])
    whole = losses.masked_mean(values, mask, 1e-4)
    count = mask.sum()
    halves = [
        losses.masked_mean(values[i : i + 2], mask[i : i + 2], 1e-4, count, world=2) for i in (0, 2)
    ]
    assert (sum(halves) / 2).item() == pytest.approx(whole.item(), rel=1e-7)
    assert whole.item() == pytest.approx(9.0 / (3 + 1e-4), rel=1e-7)


@pytest.mark.parametrize(
    ("ours", "enhancer"),
    [
        (adjust_brightness, "Brightness"),
        (adjust_contrast, "Contrast"),
        (adjust_saturation, "Color"),
    ],
)
def test_jitter_ops_match_pil(ours, enhancer):
    from PIL import Image, ImageEnhance

    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    for factor in (0.8, 1.13):
        ref = np.asarray(getattr(ImageEnhance, enhancer)(Image.fromarray(img)).enhance(factor))
        diff = np.abs(ref.astype(int) - ours(img, factor).astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_color_jitter_is_seeded_and_bounded():
    img = np.random.default_rng(0).integers(30, 220, (16, 16, 3), dtype=np.uint8)
    a = color_jitter(img, (0.2, 0.2, 0.2, 0.01), np.random.default_rng(7))
    b = color_jitter(img, (0.2, 0.2, 0.2, 0.01), np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, img)
    same = color_jitter(img, (0.0, 0.0, 0.0, 0.0), np.random.default_rng(7))
    assert np.array_equal(same, img)


def test_scaled_generator_reproduces_official_layout():
    for backbone, blocks in (("unet", 2), ("unet", 1), ("linknet", 2)):
        with torch.device("meta"):
            ours = ScaledAEINet(backbone, blocks).state_dict()
            official = AEINet(backbone, blocks).state_dict()
        assert list(ours) == list(official)
        assert all(ours[k].shape == official[k].shape for k in ours)


def test_scaled_generator_other_size_runs():
    g = ScaledAEINet("unet", 2, c_id=16, base_channels=4, max_channels=16, image_size=32)
    with torch.no_grad():
        y, attrs = g(torch.zeros(2, 3, 32, 32), torch.ones(2, 16))
    assert y.shape == (2, 3, 32, 32) and len(attrs) == 5
    assert float(y.abs().max()) <= 1.0
    with pytest.raises(UserInputError):
        ScaledAEINet(image_size=48)


def test_stage_presets_and_overrides():
    s1, s2 = cfgmod.stage1(), cfgmod.stage2()
    assert (s1.weights.adv, s1.weights.attr, s1.weights.id, s1.weights.rec) == (1, 10, 15, 10)
    assert s1.weights.eyes == 0 and not s1.eye_loss
    assert (s2.weights.id, s2.weights.eyes) == (70, 1200) and s2.eye_loss
    assert (s1.optim.lr_g, s1.optim.lr_d, s1.optim.betas) == (4e-4, 4e-4, (0.0, 0.999))
    assert (s1.optim.weight_decay, s1.batch_size, s1.epochs) == (1e-4, 16, 12)
    assert s1.data.same_prob == 0.2 and s1.data.jitter == (0.2, 0.2, 0.2, 0.01)
    cfg = merge(
        s1,
        parse_overrides(
            ["optim.discr_force=false", "optim.scheduler=true", "weights.id=70", "batch_size=8"]
        ),
    )
    assert cfg.optim.scheduler is True and cfg.optim.discr_force is False
    assert cfg.weights.id == 70.0 and cfg.batch_size == 8
    assert cfgmod.from_dict(to_dict(cfg)) == cfg
    for bad in (["nope=1"], ["batch_size=1.5"], ["optim.scheduler=maybe"], ["precision=fp8"]):
        with pytest.raises(UserInputError):
            merge(s1, parse_overrides(bad))


def test_config_file_toml(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text(
        "batch_size = 32\n[weights]\neyes = 300.0\n[data]\njitter = [0.1, 0.1, 0.1, 0.0]\n"
    )
    cfg = merge(cfgmod.stage2(), read_file(path))
    assert cfg.batch_size == 32 and cfg.weights.eyes == 300.0 and cfg.weights.id == 70.0
    assert cfg.data.jitter == (0.1, 0.1, 0.1, 0.0)
    assert math.isclose(cfg.optim.lr_g, 4e-4)
