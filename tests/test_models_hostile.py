"""The model store against bad files and hostile mirrors.

Each case is what a new user (or an attacker) can hand the store: a mirror with a broken
Content-Length, an endless or dripping body, a disk that fills, a fake file, a zip bomb,
an ONNX file reading data from outside its folder, an all-zero network, a FIFO, an empty
or random checkpoint, a folder. Every case asserts the exit code or exception, the one
line that explains it, that no input file changed, and that the model folder holds no
`.part` or half-installed file afterwards.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import struct
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from conftest import skip_or_fail
from onnx import TensorProto, external_data_helper, numpy_helper
from test_models_support import (
    LoopbackServer,
    make_store,
    onnx_entry,
    pth_entry,
    serve,
    sha,
    tiny_onnx,
    write_manifest,
    zip_bytes,
)

import ghost_engine.store.fetch as fetch_module
from ghost_engine import networks
from ghost_engine.cli import main
from ghost_engine.errors import OutputError, UnsafeArchiveError
from ghost_engine.store import DownloadConfig, DownloadError, ModelIntegrityError, import_models

GIB = 1 << 30
RECORDS = {"models.lock.json", ".verified.json"}


# ---- a mirror that misbehaves on purpose ---------------------------------------------


class _HostileHandler(BaseHTTPRequestHandler):
    routes: dict[str, Callable[[BaseHTTPRequestHandler], None]]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        route = self.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        try:
            route(self)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on us, which is the point


class HostileMirror(LoopbackServer):
    """Loopback server whose paths each misbehave in one way; every loop is bounded."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[BaseHTTPRequestHandler], None]] = {}
        super().__init__(type("Handler", (_HostileHandler,), {"routes": self.routes}))
        self.sent: dict[str, int] = {}

    def bad_length(self, name: str, value: str) -> str:
        def answer(h: BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            h.send_header("Content-Length", value)
            h.end_headers()
            h.wfile.write(b"x" * 4096)

        self.routes[f"/{name}"] = answer
        return self.url(name)

    def endless(self, name: str, *, block: int = 64 * 1024, most_blocks: int = 2048) -> str:
        """No Content-Length, then bytes until the client hangs up (128 MiB at most)."""

        def answer(h: BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            h.end_headers()
            chunk = b"\0" * block
            for i in range(most_blocks):
                h.wfile.write(chunk)
                self.sent[name] = (i + 1) * block

        self.routes[f"/{name}"] = answer
        return self.url(name)

    def drip(self, name: str, *, length: int = 1000, every_s: float = 0.2) -> str:
        """A proper Content-Length, then one byte every `every_s` (200 bytes at most)."""

        def answer(h: BaseHTTPRequestHandler) -> None:
            h.send_response(200)
            h.send_header("Content-Length", str(length))
            h.end_headers()
            for i in range(min(length, 200)):
                h.wfile.write(b"x")
                h.wfile.flush()
                self.sent[name] = i + 1
                time.sleep(every_s)

        self.routes[f"/{name}"] = answer
        return self.url(name)

    def drip_headers(self, name: str, *, every_s: float = 0.2) -> str:
        """A status line, then a header one byte at a time (200 bytes at most)."""

        def answer(h: BaseHTTPRequestHandler) -> None:
            h.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
            for _ in range(200):
                h.wfile.write(b"a")
                h.wfile.flush()
                time.sleep(every_s)

        self.routes[f"/{name}"] = answer
        return self.url(name)


@pytest.fixture
def mirror() -> Iterator[HostileMirror]:
    yield from serve(HostileMirror)


@pytest.fixture
def server():
    yield from serve()


# ---- what every case checks ------------------------------------------------------------


def digests(*paths: Path) -> dict[str, str]:
    """SHA-256 of every file under `paths` (the user's inputs), to compare before/after."""
    out = {}
    for top in paths:
        for path in [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]:
            if path.is_file() and not path.is_symlink():
                out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def leftovers(root: Path) -> list[str]:
    """Files in the model folder besides the two records: a .part, a half install..."""
    if not root.exists():
        return []
    return sorted(
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in RECORDS
    )


def cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code), out, err


def error_line(err: str) -> str:
    """The one `error:` line, which must also be the last line and carry no traceback."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def refused_import(capsys, source: Path, cache: Path, *options: str) -> str:
    """`models import SOURCE --models-dir CACHE OPTIONS` refuses with exit 4, one error line
    and one `NAME: FAILED: ` line (returned), and leaves nothing in the model folder."""
    code, _, err = cli(
        capsys, "models", "import", str(source), "--models-dir", str(cache), *options
    )
    assert code == 4, err
    error_line(err)
    failed = [line for line in err.splitlines() if ": FAILED: " in line]
    assert len(failed) == 1, err
    assert leftovers(cache) == []
    return failed[0]


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and text, text
    return text


def assert_no_unsafe_advice(text: str) -> None:
    """torch's refusals advise loading with `weights_only=False`; ours never may."""
    assert "weights_only" not in text and "weights only" not in text.lower(), text


# ---- hostile mirrors -------------------------------------------------------------------

NO_RETRY = DownloadConfig(retries=0, backoff_s=0.0, timeout_s=2.0)


@pytest.mark.parametrize("value", ["abc", "-5", "12 34"])
def test_a_malformed_content_length_is_one_line_naming_the_server(
    mirror, tmp_path, capsys, monkeypatch, value
):
    monkeypatch.delenv("GHOST_ENGINE_MODEL_BASE_URL", raising=False)
    url = mirror.bad_length("lm.onnx", value)
    manifest = write_manifest(tmp_path / "manifest.json", [onnx_entry("lm", "lm.onnx", [url])])
    before = digests(manifest)
    cache = tmp_path / "cache"
    code, _, err = cli(
        capsys, "models", "download", "lm", "--retries", "0", "--models-dir", str(cache),
        "--manifest", str(manifest),
    )  # fmt: skip
    assert code == 5
    line = error_line(err)
    host = url.split("/")[2]
    assert f"the server {host} sent an invalid Content-Length {value!r}" in line
    assert "nothing was downloaded" in line
    assert digests(manifest) == before
    assert leftovers(cache) == []


def test_an_endless_body_stops_at_the_cap_and_leaves_no_part(mirror, tmp_path):
    url = mirror.endless("lm.onnx")
    config = DownloadConfig(retries=0, timeout_s=2.0, onnx_cap_bytes=256 * 1024)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])], config=config)
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        store.download(["lm"])
    assert time.monotonic() - start < 5
    message = one_line(err.value)
    assert "the server sent more than the 256 KiB limit for .onnx files" in message
    assert "stopped and removed the partial file" in message
    assert leftovers(store.root) == []
    assert mirror.sent["lm.onnx"] < 64 * 1024 * 1024  # it stopped reading long before


def test_a_body_longer_than_the_published_size_stops_there(mirror, tmp_path):
    url = mirror.endless("lm.onnx")
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url], size=100_000)], NO_RETRY)
    with pytest.raises(DownloadError, match="more than the published 100000 bytes"):
        store.download(["lm"])
    assert leftovers(store.root) == []


def test_a_declared_size_over_the_cap_is_refused_before_the_body(mirror, tmp_path):
    url = mirror.bad_length("lm.onnx", str(5 * GIB))
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])], config=NO_RETRY)
    with pytest.raises(DownloadError) as err:
        store.download(["lm"])
    assert f"offers {5 * GIB} bytes, over the 1 GiB limit for .onnx files" in one_line(err.value)
    assert leftovers(store.root) == []


def test_a_dripping_server_fails_at_the_deadline(mirror, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GHOST_ENGINE_MODEL_BASE_URL", raising=False)
    url = mirror.drip("lm.onnx")
    manifest = write_manifest(tmp_path / "manifest.json", [onnx_entry("lm", "lm.onnx", [url])])
    before = digests(manifest)
    cache = tmp_path / "cache"
    start = time.monotonic()
    code, _, err = cli(
        capsys, "models", "download", "lm", "--retries", "3", "--timeout", "5",
        "--deadline", "1", "--models-dir", str(cache), "--manifest", str(manifest),
    )  # fmt: skip
    elapsed = time.monotonic() - start
    assert code == 5
    assert 0.9 < elapsed < 3.0  # the deadline, not the 5 s socket timeout or the retries
    line = error_line(err)
    assert "could not download lm.onnx within the 1 s deadline" in line
    assert "the partial file was removed" in line
    assert 0 < mirror.sent["lm.onnx"] < 20  # it did send bytes: a timeout alone never fires
    assert digests(manifest) == before
    assert leftovers(cache) == []


def test_headers_that_drip_fail_at_the_deadline_too(mirror, tmp_path):
    url = mirror.drip_headers("lm.onnx")
    config = DownloadConfig(retries=2, backoff_s=0.0, timeout_s=5.0, deadline_s=0.8)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])], config=config)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="within the 0.8 s deadline"):
        store.download(["lm"])
    assert time.monotonic() - start < 2.5
    assert leftovers(store.root) == []


def test_a_full_disk_removes_the_part(server, tmp_path, monkeypatch):
    """The operating system answers ENOSPC after 100 kB, as a full disk does."""
    data = tiny_onnx(pad_bytes=400_000)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [server.put("lm.onnx", data)])])
    real_open = builtins.open

    class FullDisk(io.RawIOBase):
        def __init__(self, path: str, mode: str) -> None:
            self.inner = real_open(path, mode)
            self.written = 0

        def write(self, block) -> int:
            if self.written + len(block) > 100_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(block)
            return self.inner.write(block)

        def close(self) -> None:
            self.inner.close()
            super().close()

    monkeypatch.setattr(fetch_module, "open", FullDisk, raising=False)
    with pytest.raises(OutputError) as err:
        store.download(["lm"])
    message = one_line(err.value)
    assert "the disk is full while writing" in message and "partial file was removed" in message
    assert leftovers(store.root) == []


# ---- fake files ------------------------------------------------------------------------


def test_a_fake_file_with_the_wrong_hash_is_refused_on_import(tmp_path, capsys):
    good, fake = tiny_onnx(seed=1), tiny_onnx(seed=2)
    manifest = write_manifest(
        tmp_path / "manifest.json", [onnx_entry("lm", "lm.onnx", [], sha256=sha(good))]
    )
    offered = tmp_path / "offline" / "lm.onnx"
    offered.parent.mkdir()
    offered.write_bytes(fake)
    before = digests(offered.parent, manifest)
    failed = refused_import(capsys, offered, tmp_path / "cache", "--manifest", str(manifest))
    assert failed.startswith("lm: FAILED: ")
    assert sha(good) in failed and sha(fake) in failed and "was removed" in failed
    assert digests(offered.parent, manifest) == before


def test_a_fake_2d106det_is_refused_by_the_packaged_manifest(tmp_path, capsys):
    """The published size and hash now stop the fake that used to be pinned and used."""
    fake = tmp_path / "2d106det.onnx"
    fake.write_bytes(tiny_onnx())  # the right signature, but not insightface's file
    before = digests(fake)
    failed = refused_import(capsys, fake, tmp_path / "cache")
    assert failed.startswith("landmarks_2d106: FAILED: ")
    assert f"{len(fake.read_bytes())} bytes, but the published file is 5030888 bytes" in failed
    assert "nothing was copied" in failed
    assert digests(fake) == before


def test_a_download_with_the_wrong_hash_names_both_and_keeps_nothing(server, tmp_path):
    good, fake = tiny_onnx(seed=1), tiny_onnx(seed=2)
    url = server.put("lm.onnx", fake)
    entry = onnx_entry("lm", "lm.onnx", [url], sha256=sha(good), size=len(good))
    store = make_store(tmp_path, [entry])
    with pytest.raises(ModelIntegrityError) as err:
        store.download(["lm"])
    message = one_line(err.value)
    assert sha(good) in message and sha(fake) in message
    assert leftovers(store.root) == []


def test_a_published_size_refuses_a_mirror_offering_another(server, tmp_path):
    data = tiny_onnx()
    url = server.put("lm.onnx", data)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url], size=len(data) + 1)])
    with pytest.raises(DownloadError) as err:
        store.download(["lm"])
    expected = f"offers {len(data)} bytes, but the published file is {len(data) + 1} bytes"
    assert expected in one_line(err.value)
    assert len(server.state.seen) == 1  # refused on the header: not retried, body unread
    assert leftovers(store.root) == []


def _declare_size(zip_data: bytes, member: str, size: int) -> bytes:
    """Rewrite the uncompressed size a zip declares for `member` (local and central
    headers), leaving its few real bytes: a bomb's header without the bomb."""
    data = bytearray(zip_data)
    name = member.encode()
    # (signature, offset of the size, of the name's length, of the name) per header kind
    for signature, size_at, name_len_at, name_at in (
        (b"PK\x03\x04", 22, 26, 30),  # local file header
        (b"PK\x01\x02", 24, 28, 46),  # central directory header
    ):
        header = data.index(signature)
        while True:
            name_len = struct.unpack_from("<H", data, header + name_len_at)[0]
            if bytes(data[header + name_at : header + name_at + name_len]) == name:
                struct.pack_into("<I", data, header + size_at, size)
                break
            header = data.index(signature, header + 4)
    return bytes(data)


def test_a_zip_bomb_member_is_refused_before_extraction(tmp_path, capsys):
    bomb = tmp_path / "pack.zip"
    bomb.write_bytes(_declare_size(zip_bytes({"pack/lm.onnx": tiny_onnx()}), "pack/lm.onnx", GIB))
    with zipfile.ZipFile(bomb) as zf:
        assert zf.getinfo("pack/lm.onnx").file_size == GIB  # what a reader is told
    manifest = write_manifest(
        tmp_path / "manifest.json", [onnx_entry("lm", "lm.onnx", [], size=len(tiny_onnx()))]
    )
    before = digests(bomb, manifest)
    failed = refused_import(capsys, bomb, tmp_path / "cache", "--manifest", str(manifest))
    assert failed.startswith("lm: FAILED: ")
    assert f"member 'pack/lm.onnx' declares {GIB} bytes, but the published file is" in failed
    assert "nothing was extracted" in failed
    assert digests(bomb, manifest) == before


def test_a_zip_bomb_member_of_unknown_size_meets_the_cap(tmp_path):
    bomb = tmp_path / "pack.zip"
    bomb.write_bytes(_declare_size(zip_bytes({"lm.onnx": tiny_onnx()}), "lm.onnx", GIB))
    config = DownloadConfig(onnx_cap_bytes=64 << 20)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [])], config=config)
    report = import_models(store, bomb)
    assert list(report.failed) == ["lm"]
    message = report.failed["lm"]
    assert "\n" not in message
    assert f"declares {GIB} bytes, over the 64 MiB limit for .onnx files" in message
    assert leftovers(store.root) == []


def test_a_downloaded_pack_whose_member_declares_another_size_writes_nothing(server, tmp_path):
    data = tiny_onnx()
    pack = _declare_size(zip_bytes({"b/2d106det.onnx": data}), "b/2d106det.onnx", GIB)
    url = server.put("pack.zip", pack)
    archive = {"file": "pack.zip", "member": "2d106det.onnx"}
    entry = onnx_entry("lm", "2d106det.onnx", [url], archive=archive, size=len(data))
    store = make_store(tmp_path, [entry])
    with pytest.raises(UnsafeArchiveError) as err:
        store.download(["lm"])
    message = one_line(err.value)
    assert f"declares {GIB} bytes, but the published file is {len(data)} bytes" in message
    assert "nothing was extracted" in message
    assert leftovers(store.root) == []


# ---- structure: external data, all-zero networks ----------------------------------------


def _onnx_with_external_data(location: str) -> bytes:
    model = onnx.load_from_string(tiny_onnx())
    weight = model.graph.initializer[0]
    external_data_helper.set_external_data(weight, location=location)
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    return model.SerializeToString()


def _zero_onnx() -> bytes:
    model = onnx.load_from_string(tiny_onnx(pad_bytes=4000))
    for init in model.graph.initializer:
        zeros = np.zeros_like(numpy_helper.to_array(init))
        init.CopyFrom(numpy_helper.from_array(zeros, init.name))
    return model.SerializeToString()


def _import_one_failure(capsys, tmp_path: Path, source: Path, entries: list[dict]) -> str:
    """Import `source`; returns the one FAILED line after the common checks."""
    manifest = write_manifest(tmp_path / "manifest.json", entries)
    before = digests(source, manifest)
    failed = refused_import(capsys, source, tmp_path / "cache", "--manifest", str(manifest))
    assert digests(source, manifest) == before
    return failed


def test_onnx_with_external_data_outside_its_folder_is_refused(tmp_path, capsys):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"\0" * 64)
    src = tmp_path / "offline"
    src.mkdir()
    (src / "lm.onnx").write_bytes(_onnx_with_external_data("../outside.bin"))
    line = _import_one_failure(capsys, tmp_path, src, [onnx_entry("lm", "lm.onnx", [])])
    assert "is an ONNX file with external data (tensor 'w' points to '../outside.bin')" in line
    assert outside.read_bytes() == b"\0" * 64


def test_an_installed_onnx_with_external_data_fails_verify_and_is_removed(tmp_path, capsys):
    manifest = write_manifest(tmp_path / "manifest.json", [onnx_entry("lm", "lm.onnx", [])])
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "lm.onnx").write_bytes(_onnx_with_external_data("/etc/hostname"))
    code, _, err = cli(
        capsys, "models", "verify", "--models-dir", str(cache), "--manifest", str(manifest)
    )
    assert code == 4
    assert "an ONNX file with external data" in err and "'/etc/hostname'" in err
    assert leftovers(cache) == []


def test_an_all_zero_onnx_is_refused(tmp_path, capsys):
    src = tmp_path / "lm.onnx"
    src.write_bytes(_zero_onnx())
    line = _import_one_failure(capsys, tmp_path, src, [onnx_entry("lm", "lm.onnx", [])])
    assert "is not a trained network: all weights equal" in line
    assert "'w' is all 0" in line


def test_an_all_zero_pth_is_refused(tmp_path, capsys):
    src = tmp_path / "ir18.pth"
    state = networks.build("arcface_iresnet18").state_dict()
    torch.save({k: torch.zeros_like(v) for k, v in state.items()}, src)
    line = _import_one_failure(capsys, tmp_path, src, [pth_entry("arc", "ir18.pth", [])])
    assert "is not a trained network: all weights equal" in line


def test_one_trained_tensor_is_enough_to_pass(tmp_path):
    model = onnx.load_from_string(_zero_onnx())
    weight = model.graph.initializer[0]
    values = numpy_helper.to_array(weight).copy()
    values.flat[0] = 0.5
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    src = tmp_path / "lm.onnx"
    src.write_bytes(model.SerializeToString())
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [])])
    assert list(import_models(store, src).imported) == ["lm"]


# ---- things that are not files ----------------------------------------------------------


def _mkfifo(path: Path) -> None:
    """`os.mkfifo`, or a skip where the platform has no FIFOs (a failure under CI)."""
    if not hasattr(os, "mkfifo"):
        skip_or_fail("FIFOs are POSIX")
    os.mkfifo(path)


def _in_thread(target: Callable[[], None], unblock: Callable[[], None]) -> float:
    """Run `target` and return its time; a hang fails the test instead of the session."""
    done = threading.Event()
    start = time.monotonic()

    def run() -> None:
        try:
            target()
        finally:
            done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not done.wait(10):
        unblock()
        thread.join(5)
        pytest.fail("it blocked on the FIFO")
    return time.monotonic() - start


def test_import_of_a_fifo_is_refused_without_opening_it(tmp_path, capsys):
    fifo = tmp_path / "lm.onnx"
    _mkfifo(fifo)
    cache = tmp_path / "cache"
    manifest = write_manifest(tmp_path / "manifest.json", [onnx_entry("lm", "lm.onnx", [])])
    result: dict[str, object] = {}

    def run() -> None:
        result["cli"] = cli(
            capsys, "models", "import", str(fifo), "--models-dir", str(cache),
            "--manifest", str(manifest),
        )  # fmt: skip

    def unblock() -> None:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)

    assert _in_thread(run, unblock) < 2
    code, _, err = result["cli"]  # type: ignore[misc]
    assert code == 2
    line = error_line(err)
    assert line == (
        f"error: {fifo} is a FIFO (named pipe), not a file or folder; nothing was read from "
        f"it. Give a folder, a zip or a model file"
    )
    assert leftovers(cache) == []


def test_a_fifo_inside_an_imported_folder_is_skipped(tmp_path, capsys):
    src = tmp_path / "offline"
    src.mkdir()
    _mkfifo(src / "lm.onnx")
    manifest = write_manifest(tmp_path / "manifest.json", [onnx_entry("lm", "lm.onnx", [])])
    result: dict[str, object] = {}
    opts = ["--models-dir", str(tmp_path / "cache"), "--manifest", str(manifest)]

    def run() -> None:
        result["cli"] = cli(capsys, "models", "import", str(src), *opts)

    def unblock() -> None:
        os.close(os.open(src / "lm.onnx", os.O_WRONLY | os.O_NONBLOCK))

    _in_thread(run, unblock)
    code, _, err = result["cli"]  # type: ignore[misc]
    assert code == 2
    assert "no model files found" in error_line(err)


RANDOM = np.random.default_rng(0).bytes(8192)


def _convert(capsys, path: Path) -> tuple[int, str]:
    code, _, err = cli(capsys, "convert", str(path), "--network", "arcface_iresnet18")
    return code, error_line(err)


def test_convert_of_an_empty_pth_says_it_is_empty(tmp_path, capsys):
    path = tmp_path / "backbone.pth"
    path.write_bytes(b"")
    code, line = _convert(capsys, path)
    assert code == 4
    assert line.startswith(f"error: {path} is empty (0 bytes), not a checkpoint")
    assert path.read_bytes() == b""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backbone.pth"]


def test_convert_of_a_folder_says_it_is_a_folder(tmp_path, capsys):
    folder = tmp_path / "weights.pth"
    folder.mkdir()
    code, line = _convert(capsys, folder)
    assert code == 2
    assert line == f"error: {folder} is a folder, not a checkpoint file; give the .pth file itself"
    assert list(folder.iterdir()) == []


def test_convert_of_a_fifo_is_refused_without_opening_it(tmp_path, capsys):
    fifo = tmp_path / "backbone.pth"
    _mkfifo(fifo)
    result: dict[str, object] = {}

    def unblock() -> None:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))

    _in_thread(lambda: result.setdefault("r", _convert(capsys, fifo)), unblock)
    code, line = result["r"]  # type: ignore[misc]
    assert code == 2 and "is a FIFO (named pipe), not a checkpoint file" in line


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(RANDOM.replace(b"\x80", b"\x81").replace(b"PK", b"pk"), id="random"),
        pytest.param(b"\x80\x04" + bytes(range(256)) * 8, id="random-after-a-pickle-header"),
    ],
)
def test_random_bytes_are_not_a_pytorch_checkpoint(tmp_path, capsys, payload):
    path = tmp_path / "backbone.pth"
    path.write_bytes(payload)
    code, line = _convert(capsys, path)
    assert code == 4
    assert "not a PyTorch checkpoint" in line
    assert "asks to run code" not in line
    assert_no_unsafe_advice(line)
    assert path.read_bytes() == payload
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backbone.pth"]


def test_random_bytes_offered_for_import_are_not_a_pytorch_checkpoint(tmp_path, capsys):
    src = tmp_path / "ir18.pth"
    src.write_bytes(b"GHOST" + bytes(range(256)) * 40)
    line = _import_one_failure(capsys, tmp_path, src, [pth_entry("arc", "ir18.pth", [])])
    assert "not a PyTorch checkpoint" in line and "asks to run code" not in line
    assert_no_unsafe_advice(line)


def test_no_message_in_the_engine_advises_an_unsafe_load():
    """torch suggests `weights_only=False` in its refusals; we never pass that on."""
    engine = Path(__file__).resolve().parent.parent / "engine"
    offenders = []
    for path in engine.rglob("*.py"):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if "weights_only=False" in line or "weights_only` set to `False" in line:
                offenders.append(f"{path.relative_to(engine)}:{number}")
    assert offenders == []
