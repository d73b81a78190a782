"""Safe checkpoint loading: official layouts in, strict round trips, malicious pickles out."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from official_networks import OFFICIAL_NETWORKS

from ghost_engine import networks
from ghost_engine.errors import CheckpointError, InputFileNotFoundError
from ghost_engine.networks.checkpoint import identify, load_into, read_state_dict
from ghost_engine.networks.fill import fill_module


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
@pytest.mark.parametrize("name", OFFICIAL_NETWORKS)
def test_official_state_dict_round_trip(tmp_path: Path, name: str) -> None:
    """A file saved from an official-format module loads strictly into ours, and back."""
    official = fill_module(networks.build(name)).state_dict()
    path = tmp_path / f"{name}.pth"
    torch.save(official, path)

    ours = networks.load(name, path)
    assert _same(ours.state_dict(), official)
    # ...and what we save loads into a fresh module (the official layout) strictly.
    back = tmp_path / "back.pth"
    torch.save(ours.state_dict(), back)
    fresh = networks.build(name)
    fresh.load_state_dict(torch.load(back, weights_only=True), strict=True)
    assert _same(fresh.state_dict(), official)


@pytest.mark.parametrize("wrapper", ["bare", "state_dict", "model", "dataparallel"])
def test_official_wrappers_are_accepted(tmp_path: Path, wrapper: str) -> None:
    state = fill_module(networks.build("arcface_iresnet18")).state_dict()
    payload: object = {
        "bare": state,
        "state_dict": {"state_dict": state, "epoch": 3},
        "model": {"model": state, "optimizer": {"lr": 0.1}},
        "dataparallel": {f"module.{k}": v for k, v in state.items()},
    }[wrapper]
    path = tmp_path / "w.pth"
    torch.save(payload, path)
    assert _same(networks.load("arcface_iresnet18", path, convert=False).state_dict(), state)


def test_converted_to_safetensors_and_reused(tmp_path: Path) -> None:
    state = fill_module(networks.build("arcface_iresnet18")).state_dict()
    path = tmp_path / "backbone.pth"
    torch.save(state, path)
    net = networks.build("arcface_iresnet18")
    assert load_into(net, path) == path
    converted = tmp_path / "backbone.safetensors"
    assert converted.is_file()
    # The second load reads the safetensors, with the same weights.
    net2 = networks.build("arcface_iresnet18")
    assert load_into(net2, path) == converted
    assert _same(net2.state_dict(), state)
    # A changed .pth invalidates the conversion.
    state2 = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state2, path)
    os.utime(path, ns=(1, 1))
    net3 = networks.build("arcface_iresnet18")
    assert load_into(net3, path) == path
    assert torch.equal(net3.state_dict()["fc.bias"], state2["fc.bias"])


def test_wrong_network_names_first_mismatches_and_guess(tmp_path: Path) -> None:
    path = tmp_path / "d.pth"
    torch.save(networks.build("D_unet").state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        networks.load("arcface_iresnet18", path)
    msg = str(err.value)
    assert "does not fit network 'arcface_iresnet18'" in msg
    assert "missing keys: conv1.weight" in msg
    assert "unexpected keys: layer0.0.weight" in msg
    assert "looks like a multiscale discriminator" in msg


def test_wrong_shapes_are_named(tmp_path: Path) -> None:
    path = tmp_path / "r34.pth"
    torch.save(networks.build("arcface_iresnet50").state_dict(), path)
    with pytest.raises(CheckpointError) as err:
        networks.load("arcface_iresnet34", path)
    assert "unexpected keys: layer3.6." in str(err.value)
    assert "ArcFace iresnet50" in str(err.value)


def test_identify_generators() -> None:
    for name, expected in [
        ("G_unet_3blocks", "an AEI-Net generator (unet, 3 AAD layers per block)"),
        ("G_linknet_2blocks", "an AEI-Net generator (linknet, 2 AAD layers per block)"),
    ]:
        shapes = {k: tuple(v.shape) for k, v in networks.build(name).state_dict().items()}
        assert identify(shapes) == expected


class _Payload:
    """Unpickling this opens (creates) a file: the shape of a real attack."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self) -> tuple:
        return (open, (str(self.target), "w"))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    target = tmp_path / "pwned.txt"
    path = tmp_path / "evil.pth"
    torch.save({"conv1.weight": torch.zeros(1), "x": _Payload(target)}, path)
    assert not target.exists()

    with pytest.raises(CheckpointError) as err:
        networks.load("arcface_iresnet18", path)
    assert "refused to load" in str(err.value)
    assert "Nothing from it was executed" in str(err.value)
    assert not target.exists()

    # The payload is real: an unsafe load would have created the file.
    control = tmp_path / "control.pth"
    torch.save({"x": _Payload(tmp_path / "control.txt")}, control, pickle_protocol=2)
    torch.load(control, weights_only=False)
    assert (tmp_path / "control.txt").exists()


def test_plain_pickle_payload_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "pwned2.txt"
    path = tmp_path / "legacy.pth"
    path.write_bytes(pickle.dumps({"w": _Payload(target)}))
    with pytest.raises(CheckpointError):
        read_state_dict(path)
    assert not target.exists()


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(InputFileNotFoundError):
        read_state_dict(tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    good = tmp_path / "good.pth"
    torch.save(networks.build("arcface_iresnet18").state_dict(), good)
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        read_state_dict(bad)
    notdict = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], notdict)
    with pytest.raises(CheckpointError, match="expected a state dict"):
        read_state_dict(notdict)


def test_convert_command(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "backbone.pth"
    torch.save(fill_module(networks.build("arcface_iresnet18")).state_dict(), path)
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "ghost_engine",
            "convert",
            str(path),
            "--network",
            "arcface_iresnet18",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "backbone.safetensors").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "ghost_engine", "convert", str(path), "--network", "D_unet"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 4
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    assert "looks like an ArcFace iresnet18" in bad.stderr
