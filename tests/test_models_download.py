"""Downloads against a loopback server: resume, corruption, dead/slow servers, lock file."""

from __future__ import annotations

import json
import socket
import time

import pytest
from test_models_support import (
    make_store,
    onnx_entry,
    serve,
    sha,
    tiny_onnx,
    zip_bytes,
)

from ghost_engine.errors import ModelMissingError, UnsafeArchiveError
from ghost_engine.store import DownloadConfig, DownloadError, ModelIntegrityError

NO_RETRY = DownloadConfig(retries=0, backoff_s=0.0, timeout_s=2.0)


@pytest.fixture
def server():
    yield from serve()


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    data = tiny_onnx(pad_bytes=400_000)
    half = len(data) // 2
    url = server.put("lm.onnx", data)
    server.state.cut_once["/files/lm.onnx"] = half
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])], config=NO_RETRY)

    with pytest.raises(DownloadError, match="connection closed after"):
        store.download(["lm"])
    part = store.root / "lm.onnx.part"
    assert part.stat().st_size == half
    assert not (store.root / "lm.onnx").exists()

    store.download(["lm"])
    assert server.ranges("lm.onnx") == [None, f"bytes={half}-"]
    final = store.root / "lm.onnx"
    assert final.read_bytes() == data
    assert not part.exists()
    assert store.verify("lm").sha256 == sha(data)
    assert store.status("lm").verified


def test_cut_connection_is_resumed_by_the_retry_within_one_call(server, tmp_path):
    data = tiny_onnx(pad_bytes=200_000)
    url = server.put("lm.onnx", data)
    server.state.cut_once["/files/lm.onnx"] = 1000
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])])
    store.download(["lm"])
    assert server.ranges("lm.onnx") == [None, "bytes=1000-"]
    assert (store.root / "lm.onnx").read_bytes() == data


def test_corrupt_download_is_reported_with_both_hashes_removed_and_not_used(server, tmp_path):
    good = tiny_onnx()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    url = server.put("lm.onnx", bytes(bad))
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url], sha256=sha(good))])

    with pytest.raises(ModelIntegrityError) as err:
        store.download(["lm"])
    message = str(err.value)
    assert sha(good) in message and sha(bytes(bad)) in message
    assert "removed" in message
    assert not (store.root / "lm.onnx").exists()
    assert not (store.root / "lm.onnx.part").exists()
    assert not store.is_installed("lm")
    with pytest.raises(ModelMissingError):
        store.path("lm")


def test_first_download_pins_the_hash_and_later_downloads_must_match(server, tmp_path):
    first = tiny_onnx(seed=1)
    url = server.put("lm.onnx", first)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])])
    store.download(["lm"])
    lock = json.loads((store.root / "models.lock.json").read_text())
    assert lock["lm"]["sha256"] == sha(first)
    assert lock["lm"]["size"] == len(first)

    other = tiny_onnx(seed=2)  # the upstream file changed (or was tampered with)
    server.put("lm.onnx", other)
    with pytest.raises(ModelIntegrityError) as err:
        store.download(["lm"], force=True)
    assert sha(first) in str(err.value) and sha(other) in str(err.value)
    assert "lock file" in str(err.value)


def test_installed_file_changed_on_disk_is_caught_and_removed(server, tmp_path):
    data = tiny_onnx()
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [server.put("lm.onnx", data)])])
    store.download(["lm"])
    final = store.root / "lm.onnx"
    assert store.path("lm") == final
    tampered = bytearray(data)
    tampered[-5] ^= 0x01
    final.write_bytes(bytes(tampered))
    with pytest.raises(ModelIntegrityError) as err:
        store.path("lm")  # the stamp no longer matches, so path() re-verifies
    assert sha(data) in str(err.value) and sha(bytes(tampered)) in str(err.value)
    assert not final.exists()


def test_dead_server_fails_clearly_after_the_retries_without_final_files(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/lm.onnx"
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])])
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        store.download(["lm"])
    assert time.monotonic() - start < 3
    message = str(err.value)
    assert url in message and "after 3 attempts" in message
    assert "models import" in message
    assert not (store.root / "lm.onnx").exists()


def test_slow_server_times_out_after_the_retries(server, tmp_path):
    url = server.put("lm.onnx", tiny_onnx())
    server.state.delay_s = 1.5
    config = DownloadConfig(retries=1, backoff_s=0.01, timeout_s=0.3)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])], config=config)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="timed out") as err:
        store.download(["lm"])
    assert time.monotonic() - start < 3
    assert "after 2 attempts" in str(err.value)
    assert len(server.ranges("lm.onnx")) == 2
    assert not (store.root / "lm.onnx").exists()


def test_missing_url_falls_through_to_the_next_mirror(server, tmp_path):
    data = tiny_onnx()
    good = server.put("lm.onnx", data)
    dead = f"{server.base}/gone/lm.onnx"
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [dead, good])])
    store.download(["lm"])
    assert (store.root / "lm.onnx").read_bytes() == data
    assert [s.path for s in server.state.seen] == ["/files/gone/lm.onnx", "/files/lm.onnx"]


def test_base_url_mirror_is_tried_first(server, tmp_path):
    data = tiny_onnx()
    server.put("mirror/lm.onnx", data)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", ["http://127.0.0.1:9/x"])])
    store.base_url = f"{server.base}/mirror/"
    assert store.urls(store.entry("lm"))[0] == f"{server.base}/mirror/lm.onnx"
    store.download(["lm"])
    assert (store.root / "lm.onnx").read_bytes() == data


def test_files_download_in_parallel(server, tmp_path):
    names = ["a", "b", "c"]
    entries = [
        onnx_entry(n, f"{n}.onnx", [server.put(f"{n}.onnx", tiny_onnx(seed=i))])
        for i, n in enumerate(names)
    ]
    server.state.delay_s = 0.3
    store = make_store(tmp_path, entries)
    paths = store.download(names)
    assert server.state.max_active == 3
    assert all(paths[n].read_bytes() == tiny_onnx(seed=i) for i, n in enumerate(names))


def test_zip_member_is_extracted_and_the_archive_pinned(server, tmp_path):
    data = tiny_onnx()
    pack = zip_bytes({"buffalo/2d106det.onnx": data, "buffalo/other.onnx": b"x"})
    url = server.put("pack.zip", pack)
    entry = onnx_entry(
        "lm", "2d106det.onnx", [url], archive={"file": "pack.zip", "member": "2d106det.onnx"}
    )
    store = make_store(tmp_path, [entry])
    store.download(["lm"])
    assert (store.root / "2d106det.onnx").read_bytes() == data
    assert not (store.root / "pack.zip.part").exists()
    assert not (store.root / "other.onnx").exists()
    lock = json.loads((store.root / "models.lock.json").read_text())
    assert lock["archive:pack.zip"]["sha256"] == sha(pack)
    assert lock["lm"]["sha256"] == sha(data)


@pytest.mark.parametrize("evil", ["../2d106det.onnx", "/etc/evil.onnx", "a/../../evil.onnx"])
def test_zip_with_unsafe_member_is_refused(server, tmp_path, evil):
    pack = zip_bytes({"2d106det.onnx": tiny_onnx(), evil: b"payload"})
    url = server.put("pack.zip", pack)
    entry = onnx_entry(
        "lm", "2d106det.onnx", [url], archive={"file": "pack.zip", "member": "2d106det.onnx"}
    )
    store = make_store(tmp_path, [entry])
    with pytest.raises(UnsafeArchiveError, match="refusing") as err:
        store.download(["lm"])
    assert evil in str(err.value)
    assert not (store.root / "2d106det.onnx").exists()
    assert not (tmp_path / "2d106det.onnx").exists() and not (tmp_path / "evil.onnx").exists()
    assert not (store.root / "pack.zip.part").exists()


def test_a_pinned_size_holds_a_mirror_to_the_first_download(server, tmp_path):
    first = tiny_onnx(seed=1)
    url = server.put("lm.onnx", first)
    store = make_store(tmp_path, [onnx_entry("lm", "lm.onnx", [url])], config=NO_RETRY)
    store.download(["lm"])
    bigger = tiny_onnx(seed=1, pad_bytes=1000)  # the upstream file changed size
    server.put("lm.onnx", bigger)
    with pytest.raises(DownloadError) as err:
        store.download(["lm"], force=True)
    assert f"offers {len(bigger)} bytes, but the pinned file is {len(first)} bytes" in str(
        err.value
    )
    assert (store.root / "lm.onnx").read_bytes() == first  # the installed file is kept
    assert not (store.root / "lm.onnx.part").exists()
