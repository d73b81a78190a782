"""`ghost-engine models ...` end to end: list, download, verify, import, path."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import zipfile

import pytest
from test_models_support import onnx_entry, serve, sha, tiny_onnx, write_manifest, zip_bytes

from ghost_engine.cli import main


@pytest.fixture
def server():
    yield from serve()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A test manifest with two ONNX entries (one with a known hash) and a cache folder."""
    monkeypatch.delenv("GHOST_ENGINE_MODEL_BASE_URL", raising=False)
    monkeypatch.delenv("GHOST_ENGINE_MODEL_MANIFEST", raising=False)
    good = tiny_onnx(seed=7)
    manifest = write_manifest(
        tmp_path / "manifest.json",
        [
            onnx_entry("lm", "lm.onnx", []),
            onnx_entry("pinned", "pinned.onnx", [], sha256=sha(good)),
        ],
        packs={"default": ["lm", "pinned"]},
    )
    cache = tmp_path / "cache"
    opts = ["--models-dir", str(cache), "--manifest", str(manifest)]
    return {"cache": cache, "opts": opts, "good": good, "tmp": tmp_path}


def run(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def _import_both(setup: dict, capsys) -> None:
    """Install both entries' files from an offline folder with `models import`."""
    src = setup["tmp"] / "offline"
    src.mkdir()
    (src / "lm.onnx").write_bytes(tiny_onnx())
    (src / "pinned.onnx").write_bytes(setup["good"])
    assert run(capsys, "models", "import", str(src), *setup["opts"])[0] == 0


def test_path_of_a_missing_model_prints_the_command_that_fixes_it(
    server, setup, capsys, monkeypatch
):
    code, _, err = run(capsys, "models", "path", "lm", *setup["opts"])
    assert code == 5
    assert err.startswith("error: missing model files in")
    command = err.split("get them with: ")[1].split(" (offline")[0]
    assert command == shlex.join(["ghost-engine", "models", "download", "lm", *setup["opts"]])

    server.put("lm.onnx", tiny_onnx())
    monkeypatch.setenv("GHOST_ENGINE_MODEL_BASE_URL", server.base)
    code, out, err = run(capsys, *shlex.split(command)[1:])
    assert code == 0, err
    assert out == f"lm: {setup['cache'] / 'lm.onnx'}\n"
    code, out, _ = run(capsys, "models", "path", "lm", *setup["opts"])
    assert (code, out) == (0, f"{setup['cache'] / 'lm.onnx'}\n")


def test_python_m_entry_reports_missing_models_with_exit_code_5(tmp_path):
    env = dict(os.environ, GHOST_ENGINE_HOME=str(tmp_path))
    env.pop("GHOST_ENGINE_MODEL_MANIFEST", None)
    proc = subprocess.run(
        [sys.executable, "-m", "ghost_engine", "models", "path", "G_unet_2blocks"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 5
    assert proc.stderr.strip() == (
        f"error: missing model files in {tmp_path / 'models'}: G_unet_2blocks "
        f"(G_unet_2blocks.pth); get them with: ghost-engine models download G_unet_2blocks "
        f"(offline: ghost-engine models import PATH)"
    )


def test_list_shows_presence_verification_size_and_licence(server, setup, capsys, monkeypatch):
    code, out, _ = run(capsys, "models", "list", *setup["opts"])
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"model cache: {setup['cache']}"
    assert lines[1].split() == ["lm", "missing", "?", "MB", "test"]

    server.put("lm.onnx", tiny_onnx())
    server.put("pinned.onnx", setup["good"])
    monkeypatch.setenv("GHOST_ENGINE_MODEL_BASE_URL", server.base)
    assert run(capsys, "models", "download", "--pack", "default", *setup["opts"])[0] == 0
    (setup["cache"] / "pinned.onnx").touch()  # changed since verification -> unverified

    code, out, _ = run(capsys, "models", "list", "--json", *setup["opts"])
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    assert rows["lm"]["verified"] and rows["lm"]["size"] == len(tiny_onnx())
    assert rows["pinned"]["present"] and not rows["pinned"]["verified"]
    assert rows["lm"]["licence"] == "test"


def test_verify_reports_ok_pins_and_removes_a_corrupt_file(setup, capsys):
    _import_both(setup, capsys)

    code, out, _ = run(capsys, "models", "verify", *setup["opts"])
    assert code == 0
    assert f"lm: ok sha256 {sha(tiny_onnx())}" in out
    assert f"pinned: ok sha256 {sha(setup['good'])}" in out

    target = setup["cache"] / "lm.onnx"
    bad = bytearray(target.read_bytes())
    bad[100] ^= 0x55
    target.write_bytes(bytes(bad))
    code, out, err = run(capsys, "models", "verify", *setup["opts"])
    assert code == 4
    assert sha(tiny_onnx()) in err and sha(bytes(bad)) in err
    assert "pinned: ok" in out
    assert not target.exists()
    assert "1 of 2 model files failed verification (lm)" in err


def test_import_files_a_folder_checks_hashes_and_skips_installed(setup, capsys):
    src = setup["tmp"] / "offline"
    (src / "nested").mkdir(parents=True)
    (src / "nested" / "lm.onnx").write_bytes(tiny_onnx())
    (src / "pinned.onnx").write_bytes(tiny_onnx(seed=99))  # not the pinned file
    (src / "readme.txt").write_text("unrelated")
    code, out, err = run(capsys, "models", "import", str(src), *setup["opts"])
    assert code == 4
    assert f"lm: imported as {setup['cache'] / 'lm.onnx'}" in out
    assert "pinned: FAILED" in err and sha(setup["good"]) in err
    assert sha(tiny_onnx(seed=99)) in err
    assert not (setup["cache"] / "pinned.onnx").exists()
    lock = json.loads((setup["cache"] / "models.lock.json").read_text())
    assert lock["lm"]["sha256"] == sha(tiny_onnx())
    assert lock["lm"]["source"] == f"import from {src}"

    code, out, _ = run(capsys, "models", "import", str(src / "nested"), *setup["opts"])
    assert (code, out) == (0, "lm: already installed (use --force to replace)\n")


def test_import_from_zip_and_refusal_of_a_traversing_zip(setup, capsys):
    good_zip = setup["tmp"] / "models.zip"
    good_zip.write_bytes(zip_bytes({"pack/pinned.onnx": setup["good"]}))
    code, out, _ = run(capsys, "models", "import", str(good_zip), *setup["opts"])
    assert code == 0
    assert (setup["cache"] / "pinned.onnx").read_bytes() == setup["good"]

    evil = setup["tmp"] / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("lm.onnx", tiny_onnx())
        zf.writestr("../../lm.onnx", b"overwrite")
    code, out, err = run(capsys, "models", "import", str(evil), *setup["opts"])
    assert code == 4
    assert "refusing" in err and "'../../lm.onnx'" in err
    assert not (setup["cache"] / "lm.onnx").exists()
    assert not (setup["tmp"] / "lm.onnx").exists()


def test_import_of_nothing_known_is_a_clear_error(setup, capsys):
    src = setup["tmp"] / "empty"
    src.mkdir()
    (src / "other.bin").write_bytes(b"x")
    code, _, err = run(capsys, "models", "import", str(src), *setup["opts"])
    assert code == 2
    assert "no model files found" in err and "lm.onnx" in err


def test_download_without_names_explains_the_choices(setup, capsys):
    code, _, err = run(capsys, "models", "download", *setup["opts"])
    assert code == 2
    assert "--all or --pack default (packs: default)" in err


def test_list_and_verify_say_which_files_have_no_published_hash(setup, capsys):
    code, out, _ = run(capsys, "models", "list", *setup["opts"])
    assert code == 0
    assert out.splitlines()[-1] == (
        "pinned on first download, unverified source (no published hash: the first file "
        "that passes the structure check is trusted): lm"
    )
    code, out, _ = run(capsys, "models", "list", "--json", *setup["opts"])
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    assert rows["lm"]["hash"] == "pinned on first download, unverified source"
    assert rows["pinned"]["hash"] == "published hash"

    _import_both(setup, capsys)
    code, out, _ = run(capsys, "models", "verify", *setup["opts"])
    assert code == 0
    lines = dict(line.split(": ", 1) for line in out.splitlines())
    assert lines["lm"] == (
        f"ok sha256 {sha(tiny_onnx())} (matches the lock file: pinned on first download, "
        f"unverified source)"
    )
    assert lines["pinned"] == f"ok sha256 {sha(setup['good'])} (matches the published hash)"


def test_the_packaged_list_marks_every_file_without_a_published_hash(tmp_path, capsys, monkeypatch):
    from ghost_engine.store import load_manifest

    monkeypatch.delenv("GHOST_ENGINE_MODEL_MANIFEST", raising=False)
    code, out, _ = run(capsys, "models", "list", "--models-dir", str(tmp_path))
    assert code == 0
    unpublished = out.splitlines()[-1].rpartition(": ")[2].split(", ")
    expected = [e.name for e in load_manifest().entries.values() if e.sha256 is None]
    assert unpublished == expected
    assert "landmarks_2d106" not in unpublished and "G_unet_2blocks" in unpublished
