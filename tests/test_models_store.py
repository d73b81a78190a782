"""ModelStore lookups, require(), structure checks and the packaged manifest."""

from __future__ import annotations

import io
import json

import pytest
import torch
from safetensors.torch import load_file
from test_models_support import make_store, onnx_entry, pth_entry, serve, sha, tiny_onnx

import ghost_engine.networks as networks
from ghost_engine.errors import CheckpointError, ModelMissingError, UserInputError
from ghost_engine.networks.fill import fill_value, filled_state_dict
from ghost_engine.store import ModelStore, Progress, default_models_dir, load_manifest
from ghost_engine.store.manifest import OnnxSignature, TensorSpec
from ghost_engine.store.structure import check_onnx_signature


@pytest.fixture
def server():
    yield from serve()


@pytest.fixture(scope="module")
def iresnet18_pth(tmp_path_factory) -> bytes:
    path = tmp_path_factory.mktemp("pth") / "ir18.pth"
    torch.save(filled_state_dict(networks.build("arcface_iresnet18")), path)
    return path.read_bytes()


def test_require_names_every_missing_file_and_the_exact_command(tmp_path):
    store = make_store(
        tmp_path,
        [
            onnx_entry("a", "a.onnx", []),
            onnx_entry("b", "b.onnx", []),
            onnx_entry("c", "c.onnx", []),
        ],
    )
    (store.root).mkdir(parents=True)
    (store.root / "b.onnx").write_bytes(tiny_onnx())
    with pytest.raises(ModelMissingError) as err:
        store.require(["a", "b", "c"])
    message = str(err.value)
    assert "a (a.onnx), c (c.onnx)" in message
    assert "b (b.onnx)" not in message
    command = (
        f"ghost-engine models download a c --models-dir {store.root} "
        f"--manifest {tmp_path / 'manifest.json'}"
    )
    assert command in message
    assert err.value.exit_code == 5


def test_fix_command_is_short_for_the_default_store(monkeypatch, tmp_path):
    monkeypatch.setenv("GHOST_ENGINE_HOME", str(tmp_path / "home"))
    assert default_models_dir() == tmp_path / "home" / "models"
    store = ModelStore(progress=Progress(io.StringIO()))
    with pytest.raises(ModelMissingError) as err:
        store.path("G_unet_2blocks")
    assert "get them with: ghost-engine models download G_unet_2blocks (offline" in str(err.value)


def test_require_downloads_after_confirmation_and_respects_a_no(server, tmp_path):
    data = tiny_onnx()
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [server.put("lm.onnx", data)])])
    questions = []

    def no(question: str) -> bool:
        questions.append(question)
        return False

    with pytest.raises(ModelMissingError, match="declined"):
        store.require(["lm"], download=True, confirm=no)
    assert questions == [f"Download lm (lm.onnx) into {store.root}?"]
    assert server.state.seen == []

    paths = store.require(["lm"], download=True, confirm=lambda q: True)
    assert paths == {"lm": store.root / "lm.onnx"}
    assert paths["lm"].read_bytes() == data
    assert store.require(["lm"]) == paths  # installed now: no question, no request
    assert len(server.state.seen) == 1


def test_unknown_model_name_lists_the_known_ones(tmp_path):
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [])])
    with pytest.raises(UserInputError, match="unknown model 'nope'; known models: lm"):
        store.require(["nope"])


def test_pth_is_structure_checked_converted_and_later_served_as_safetensors(
    server, tmp_path, iresnet18_pth
):
    url = server.put("ir18.pth", iresnet18_pth)
    store = make_store(tmp_path, [pth_entry("arc", "ir18.pth", [url])])
    store.download(["arc"])
    converted = store.root / "ir18.safetensors"
    assert converted.is_file()
    assert store.path("arc") == converted
    status = store.status("arc")
    assert status.verified and status.converted == converted
    weights = load_file(str(converted))
    expected = fill_value("fc.weight", tuple(weights["fc.weight"].shape))
    assert torch.equal(weights["fc.weight"], torch.from_numpy(expected))
    assert not (store.root / ".incoming" / "ir18.pth").exists()


def test_pth_of_the_wrong_network_is_refused_and_not_pinned(server, tmp_path, iresnet18_pth):
    url = server.put("ir18.pth", iresnet18_pth)
    store = make_store(tmp_path, [pth_entry("fan", "ir18.pth", [url], network="fan_wflw_4hg")])
    with pytest.raises(CheckpointError, match="does not fit network 'fan_wflw_4hg'"):
        store.download(["fan"])
    assert not (store.root / "ir18.pth").exists()
    assert not list((store.root / ".incoming").iterdir())
    lock = store.root / "models.lock.json"
    assert not lock.exists() or "fan" not in json.loads(lock.read_text())


def test_onnx_with_the_wrong_signature_is_refused(server, tmp_path):
    bad = tiny_onnx(size=112, out_dim=512)  # a recogniser where landmarks are expected
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [server.put("lm.onnx", bad)])])
    with pytest.raises(CheckpointError) as err:
        store.download(["lm"])
    message = str(err.value)
    assert "input 0 ('data') axis 2 is 112, expected 192" in message
    assert "output 0 ('fc1') axis -1 is 512, expected 212" in message
    assert not (store.root / "lm.onnx").exists()


def test_onnx_signature_names_ranks_and_symbolic_dims(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_bytes(tiny_onnx(in_name="input.1", out_name="683"))
    ok = OnnxSignature(
        inputs=(TensorSpec(None, (4,), ((0, 1), (1, 3), (2, 192))),),  # batch is symbolic
        outputs=(TensorSpec("683", (2,), ((-1, 212),)),),
    )
    check_onnx_signature(path, ok, label="m")
    wrong = OnnxSignature(
        inputs=(TensorSpec("data", (3,), ()),),
        outputs=(TensorSpec(None, (), ()), TensorSpec(None, (), ())),
    )
    with pytest.raises(CheckpointError) as err:
        check_onnx_signature(path, wrong, label="m")
    message = str(err.value)
    assert "input 0 ('input.1') should be named 'data'" in message
    assert "has rank 4, expected [3]" in message
    assert "it has 1 outputs ['683'], expected 2" in message
    path.write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="not a readable ONNX model"):
        check_onnx_signature(path, ok, label="m")


def test_packaged_manifest_covers_the_engine_and_matches_the_registry():
    manifest = load_manifest()
    contract = {
        "G_unet_1blocks",
        "G_unet_2blocks",
        "G_unet_3blocks",
        "arcface_iresnet100",
        "scrfd_10g_bnkps",
        "glintr100",
        "landmarks_2d106",
        "sr_lipspade",
        "fan_wflw_4hg",
        "D_unet",
    }
    assert contract <= set(manifest.entries)
    registered = set(networks.names())
    for entry in manifest.entries.values():
        assert entry.urls and all(u.startswith("https://") for u in entry.urls), entry.name
        assert entry.licence
        if entry.kind == "pth":
            assert entry.network in registered, entry.name
        else:
            assert entry.signature is not None and entry.signature.inputs, entry.name
    files = {e.file for e in manifest.entries.values()}
    assert {"backbone.pth", "scrfd_10g_bnkps.onnx", "glintr100.onnx", "2d106det.onnx"} <= files
    assert {"10_net_G.pth", "WFLW_4HG.pth", "G_unet_2blocks.pth"} <= files
    assert manifest.entry("landmarks_2d106").archive.file == "buffalo_l.zip"
    assert set(manifest.pack("default")) >= {"G_unet_2blocks", "arcface_iresnet100"}


def test_malformed_manifest_entries_are_named(tmp_path):
    entry = onnx_entry("lm", "../lm.onnx", [])
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"models": [entry]}))
    with pytest.raises(UserInputError, match="entry 'lm': 'file' must be a plain file name"):
        load_manifest(path)
    entry = pth_entry("arc", "a.pth", [])
    del entry["network"]
    path.write_text(json.dumps({"models": [entry]}))
    with pytest.raises(UserInputError, match="needs the 'network'"):
        load_manifest(path)
    path.write_text(json.dumps({"models": [onnx_entry("lm", "lm.onnx", [], sha256="abc")]}))
    with pytest.raises(UserInputError, match="not 64 hex digits"):
        load_manifest(path)


def test_progress_draws_one_line_on_a_terminal_and_plain_lines_otherwise():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    bar = Progress(tty, interval_s=0.0)
    bar.start("a.pth", total=200, already=50, source="http://x")
    bar.advance("a.pth", 50)
    bar.finish("a.pth", "done")
    out = tty.getvalue()
    assert "\ra.pth  25.0%" in out and "\ra.pth  50.0%" in out
    assert out.endswith("a.pth: done\n")

    plain = io.StringIO()
    log = Progress(plain)
    log.start("a.pth", total=2 * 1024 * 1024, already=0, source="http://x/a.pth")
    log.advance("a.pth", 1024)
    log.finish("a.pth", "done")
    assert plain.getvalue() == "downloading a.pth (2.0 MB) from http://x/a.pth\na.pth: done\n"


def test_sha_helper_matches_hashlib(tmp_path):
    from ghost_engine.store.hashing import sha256_file

    data = bytes(range(256)) * 9000
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == sha(data)


def test_every_published_hash_in_the_packaged_manifest_cites_its_source():
    manifest = load_manifest()
    published = {}
    for entry in manifest.entries.values():
        for item in (entry, entry.archive):
            if item is not None and item.sha256 is not None:
                assert item.size is not None, f"{entry.name}: a hash without its size"
                assert "https://" in item.source, f"{entry.name}: no source for its hash"
                published[getattr(item, "name", getattr(item, "file", ""))] = item.sha256
    # The values below were read from the cited sources; a typo in the manifest fails here.
    assert published == {
        "scrfd_10g_bnkps": "5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
        "glintr100": "4ab1d6435d639628a6f3e5008dd4f929edf4c4124b1a7169e1048f9fef534cdf",
        "landmarks_2d106": "f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf",
        "buffalo_l.zip": "80ffe37d8a5940d59a7384c201a2a38d4741f2f3c51eef46ebb28218a7b0ca2f",
    }
    assert manifest.entry("glintr100").size == 260665334
    assert manifest.entry("landmarks_2d106").archive.size == 288621354


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size", -1, "size -1 is not a positive whole number of bytes"),
        ("size", "12", "size '12' is not a positive whole number of bytes"),
        ("source", 7, "'source' must be a string"),
    ],
)
def test_malformed_size_or_source_is_named(tmp_path, field, value, message):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"models": [onnx_entry("lm", "lm.onnx", [], **{field: value})]}))
    with pytest.raises(UserInputError, match=message):
        load_manifest(path)
