"""Renovation training on real faces: finite losses, exact resume, overfitting, the CLI.

All runs use the tiny configuration (`sr_config.tiny_model`: ngf 4, 64 pixels, a VGG19
8x narrower with random weights): NOT the official layout, whose weights are proven by
the golden tests of the network; the official key names are checked here.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ghost_engine.commands.train_sr import sr
from ghost_engine.errors import CheckpointError, UserInputError
from ghost_engine.networks.lipspade import LIPSPADEConfig, LIPSPADEGenerator
from ghost_engine.training.adversarial_step import adam_optimisers
from ghost_engine.training.degradations import DegradationConfig, degrade
from ghost_engine.training.distributed import DistContext
from ghost_engine.training.sr_config import SROptimConfig, SRTrainConfig, sr_preset
from ghost_engine.training.sr_data import resize_face, to_unit_tensor
from ghost_engine.training.sr_networks import (
    VGG19Features,
    build_sr_networks,
    load_vgg19,
    perceptual_network,
)
from ghost_engine.training.sr_recipe import SRRecipe
from ghost_engine.training.sr_step import LOSS_NAMES, SRStep
from ghost_engine.training.train_loop import TrainingLoop

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # as the training tests


def _config(media: Path, out: Path, **changes) -> SRTrainConfig:
    cfg = sr_preset(tiny=True)
    data = dataclasses.replace(cfg.data, root=str(media / "aligned"), workers=0)
    return dataclasses.replace(
        cfg, data=data, out_dir=str(out), batch_size=4, tensorboard=False, **changes
    )


@pytest.mark.slow  # 5-8 s: network construction and three steps
def test_a_few_steps_on_real_faces_have_finite_losses_and_official_keys(media, tmp_path):
    summary = TrainingLoop(
        SRRecipe(_config(media, tmp_path, max_steps=3, image_every=3, log_every=1))
    ).run()
    assert summary.global_step == 3 and len(summary.history) == 3
    for values in summary.history:
        for name in LOSS_NAMES:
            assert math.isfinite(values[name]), (name, values)
        assert values["loss_d"] > 0 and values["l1"] > 0
    assert (tmp_path / "training.pt").is_file() and (tmp_path / "images").is_dir()
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in logged] == [1, 2, 3]
    weights = torch.load(tmp_path / "latest_net_G.pth", weights_only=True)
    # same entries, in the same order, as GHOST's 10_net_G.pth (narrower tensors)
    assert list(weights) == list(LIPSPADEGenerator().state_dict())
    net = LIPSPADEGenerator(LIPSPADEConfig(ngf=4, spade_hidden=8))
    net.load_state_dict(weights, strict=True)
    # one generator forward per step, each storing batch statistics as the official run
    assert int(net.head_0.norm_0.param_free_norm.num_batches_tracked) == 3


@pytest.mark.slow  # about 6 s
def test_resume_continues_bit_for_bit(media, tmp_path) -> None:
    straight = TrainingLoop(SRRecipe(_config(media, tmp_path / "a", max_steps=4, save_every=0)))
    straight.run()
    TrainingLoop(SRRecipe(_config(media, tmp_path / "b", max_steps=2, save_every=0))).run()
    resumed = TrainingLoop(SRRecipe(_config(media, tmp_path / "b", max_steps=4, save_every=0)))
    assert resumed.resumed_from == 2
    summary = resumed.run()
    assert summary.global_step == 4
    for name in ("generator", "discriminator"):
        a = getattr(straight.nets, name).state_dict()
        b = getattr(resumed.nets, name).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_resume_refuses_other_model_settings(media, tmp_path) -> None:
    TrainingLoop(SRRecipe(_config(media, tmp_path, max_steps=1))).run()
    cfg = _config(media, tmp_path, max_steps=2)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, ngf=8))
    with pytest.raises(CheckpointError, match="different model settings"):
        TrainingLoop(SRRecipe(cfg))


@pytest.mark.slow  # about 40 s on one busy core
def test_overfitting_one_pair_cuts_the_l1_error_threefold(media) -> None:
    """200 steps of the full recipe (GAN + feature matching + perceptual) on one
    degraded/clean pair, at twice the recipe's learning rates."""
    torch.manual_seed(0)
    cfg = sr_preset(tiny=True)
    cfg = dataclasses.replace(cfg, optim=SROptimConfig(lr_g=2e-4, lr_d=8e-4))
    nets = build_sr_networks(cfg.model)
    ctx = DistContext()
    g, d = nets.generator, nets.discriminator
    optim = adam_optimisers(g, d, ctx.device, cfg.precision, SRRecipe(cfg).adam())
    step = SRStep(nets, g, d, optim, cfg, ctx)
    bgr = cv2.imread(str(media / "aligned" / "target2.png"))
    clean = resize_face(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), 64)
    degraded, _ = degrade(clean, DegradationConfig(probability=1.0), np.random.default_rng(0))
    batch = {"hq": to_unit_tensor(clean)[None], "lq": to_unit_tensor(degraded)[None]}
    l1 = [step(batch).losses["l1"] for _ in range(200)]  # each: before that step's update
    assert all(math.isfinite(v) for v in l1)
    final = float(np.mean(l1[-5:]))
    assert l1[0] / final >= 3.0, (l1[0], final)  # measured 0.443 -> 0.08 (5x)


def test_perceptual_network_needs_weights_or_explicit_random(tmp_path) -> None:
    model = sr_preset().model
    with pytest.raises(UserInputError, match="vgg_weights"):
        perceptual_network(model)
    torch.manual_seed(1)
    vgg = VGG19Features()
    state = {k: v for k, v in vgg.state_dict().items() if k.startswith("features.")}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # a full torchvision file has these
    path = tmp_path / "vgg19.pth"
    torch.save(state, path)
    loaded = perceptual_network(dataclasses.replace(model, vgg_weights=str(path)))
    x = torch.rand(1, 3, 64, 64)
    assert all(torch.equal(a, b) for a, b in zip(loaded(x), vgg(x), strict=True))
    assert [f.shape[1] for f in loaded(x)] == [64, 128, 256, 512, 512]  # relu1_1..relu5_1
    del state["features.34.bias"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="VGG19"):
        load_vgg19(str(path))


def test_cli_prints_and_runs_the_tiny_recipe(media, tmp_path) -> None:
    runner = CliRunner()
    shown = runner.invoke(
        sr, ["--tiny", "--set", "data.degradations.probability=0.5", "--print-config"]
    )
    assert shown.exit_code == 0, shown.output
    printed = json.loads(shown.output)
    assert printed["data"]["degradations"]["probability"] == 0.5
    assert printed["model"]["ngf"] == 4 and printed["weights"]["feat"] == 10.0
    args = ["--tiny", "--data", str(media / "aligned"), "--out", str(tmp_path), "--workers", "0"]
    args += ["--max-steps", "1", "--batch-size", "2", "--set", "tensorboard=false"]
    ran = runner.invoke(sr, args)
    assert ran.exit_code == 0, ran.output
    assert "trained to step 1" in ran.output and (tmp_path / "latest_net_G.pth").is_file()
    bad = runner.invoke(sr, ["--tiny", "--set", "model.colour=red", "--print-config"])
    assert isinstance(bad.exception, UserInputError) and "model.colour" in str(bad.exception)
