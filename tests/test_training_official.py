"""One stage-2 step (every loss term, eye loss included) on the official-size networks
with random fill-rule weights, batch 1: AEI-Net 2 blocks, the multiscale discriminator,
ArcFace iresnet100 and FAN WFLW 4HG. About a minute on 2 CPU cores."""

from __future__ import annotations

import math

import cv2
import pytest
import torch

from ghost_engine.networks.aei_net import AEINet
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
