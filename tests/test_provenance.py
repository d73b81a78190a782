"""C2PA content credentials on real `ghost-engine run` outputs, judged by the C2PA
library's own reader (not by `ghost_engine.provenance.verify`): the manifest validates,
states c2pa.edited / trainedAlgorithmicMedia / ghost-engine and its version, and lists
the target and the photo with hashes computed here; one changed byte of the media is
caught; a given certificate is the signer; a resumed run ends signed; formats C2PA
cannot carry keep the plain label and the report says so."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import stat
import struct
from pathlib import Path

import c2pa
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from test_video_fixtures import MarkStage

import ghost_engine
from ghost_engine.cli import main
from ghost_engine.errors import NoFaceError
from ghost_engine.video.label import is_labelled, read_jpeg_description, read_png_text
from ghost_engine.video.workdir import work_dir_for

IPTC_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
FAST = ["--generator", "passthrough", "--detector", "dlib", "--recognizer", "dlib", "-q"]
TRUST_ONLY = ("signingCredential.untrusted",)  # what an unvouched signer adds, and no more


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _cli(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    return int(info.value.code or 0)


def _run(target: Path, photo: Path, out: Path, *extra: object) -> dict:
    report = out.with_name(out.name + ".json")
    code = _cli(["run", target, "-s", photo, "-o", out, "--json", report, *FAST, *extra])
    assert code == 0
    return json.loads(report.read_text())


def _store(path: Path) -> dict:
    with c2pa.Reader(str(path)) as reader:
        return json.loads(reader.json())


def _active(store: dict) -> dict:
    return store["manifests"][store["active_manifest"]]


def _failures(store: dict) -> list[str]:
    results = store["validation_results"]["activeManifest"]
    return [f["code"] for f in results.get("failure", [])]


@pytest.fixture(scope="module")
def config_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("config")


@pytest.fixture(autouse=True)
def own_config(config_home, monkeypatch) -> None:
    """The installation identity goes to a temporary config folder, never the real one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config_home))
    monkeypatch.delenv("GHOST_ENGINE_SIGNING_DIR", raising=False)
    monkeypatch.delenv("GHOST_ENGINE_SIGN_CERT", raising=False)
    monkeypatch.delenv("GHOST_ENGINE_SIGN_KEY", raising=False)


@pytest.fixture(scope="module")
def outputs(media, tmp_path_factory, config_home) -> dict[str, tuple[Path, dict]]:
    """One run per output kind, signed with the installation identity."""
    folder = tmp_path_factory.mktemp("runs")
    faces = media / "faces"
    made = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CONFIG_HOME", str(config_home))
        patch.delenv("GHOST_ENGINE_SIGNING_DIR", raising=False)
        video = media / "videos" / "dance.mp4"
        out = folder / "out.mp4"
        made["mp4"] = out, _run(video, faces / "mark.jpg", out, "--preset", "ultrafast")
        for suffix in ("jpg", "png"):
            out = folder / f"out.{suffix}"
            made[suffix] = out, _run(faces / "beckham.jpg", faces / "mark.jpg", out)
    return made


@pytest.mark.parametrize("kind", ["mp4", "jpg", "png"])
def test_run_output_validates_with_the_c2pa_reader(outputs, media, kind) -> None:
    out, report = outputs[kind]
    store = _store(out)
    assert store["validation_state"] == "Valid"
    assert set(_failures(store)) <= set(TRUST_ONLY)  # only "nobody vouches for the signer"
    manifest = _active(store)
    actions = next(
        a["data"]["actions"]
        for a in manifest["assertions"]
        if a["label"].startswith("c2pa.actions")
    )
    edited = [a for a in actions if a["action"] == "c2pa.edited"]
    assert len(edited) == 1
    assert edited[0]["digitalSourceType"] == IPTC_TRAINED
    assert edited[0]["softwareAgent"] == {
        "name": "ghost-engine",
        "version": ghost_engine.__version__,
    }
    assert manifest["claim_generator_info"][0]["name"] == "ghost-engine"
    # the ingredients, by the hashes of the files themselves
    target = media / "videos" / "dance.mp4" if kind == "mp4" else media / "faces" / "beckham.jpg"
    photo = media / "faces" / "mark.jpg"
    got = {
        (i["relationship"], i["title"], i["metadata"]["org.ghost-engine.sha256"])
        for i in manifest["ingredients"]
    }
    assert got == {
        ("parentOf", target.name, _sha(target)),
        ("componentOf", photo.name, _sha(photo)),
    }
    # every ingredient is referenced by the edit
    assert len(edited[0]["parameters"]["ingredients"]) == 2
    # the report says which form it got, and the same signer and hashes
    assert report["provenance"]["form"] == "c2pa"
    assert report["provenance"]["identity"] == "installation"
    assert report["provenance"]["manifest"] == store["active_manifest"]
    assert {i["sha256"] for i in report["provenance"]["ingredients"]} == {_sha(target), _sha(photo)}


def test_the_plain_label_stays_beside_the_manifest(outputs) -> None:
    import av

    with av.open(str(outputs["mp4"][0])) as container:
        assert is_labelled(container.metadata)
    assert "Synthetic media" in (read_jpeg_description(outputs["jpg"][0].read_bytes()) or "")
    assert "Synthetic media" in read_png_text(outputs["png"][0].read_bytes())["synthetic"]


def test_installation_identity_is_made_once_with_a_private_key(outputs, config_home) -> None:
    folder = config_home / "ghost-engine" / "signing"
    identity = folder / "identity.pem"
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    serials = {
        _active(_store(out))["signature_info"]["cert_serial_number"] for out, _ in outputs.values()
    }
    assert len(serials) == 1  # three runs, one signer
    leaf, root = x509.load_pem_x509_certificates(identity.read_bytes())
    assert str(leaf.serial_number) in serials
    assert leaf.issuer == root.subject != leaf.subject  # a root that issued the leaf
    assert (folder / "ca.pem").read_bytes() == root.public_bytes(serialization.Encoding.PEM)


def test_verify_trusts_this_installation_and_prints_what_was_signed(outputs, capsys) -> None:
    out, report = outputs["mp4"]
    assert _cli(["verify", out]) == 0
    text = capsys.readouterr().out
    assert "the bytes match, signer trusted" in text
    assert (
        f"c2pa.edited by ghost-engine {ghost_engine.__version__} (trainedAlgorithmicMedia)" in text
    )
    for ingredient in report["provenance"]["ingredients"]:
        assert ingredient["sha256"] in text


def _flip_media_byte(path: Path, copy: Path) -> None:
    """One byte in the middle of the media data (an MP4's mdat, a JPEG's scan, a PNG's
    IDAT), found by walking the file's own structure."""
    data = bytearray(path.read_bytes())
    if data[:2] == b"\xff\xd8":
        at = data.index(b"\xff\xda")
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0] + 100
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        at = data.index(b"IDAT") + 4 + 50
    else:
        pos = 0
        while True:
            size, kind = struct.unpack(">I4s", data[pos : pos + 8])
            if kind == b"mdat":
                at = pos + size // 2
                break
            pos += size
    data[at] ^= 0x01
    copy.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["mp4", "jpg", "png"])
def test_one_changed_byte_is_reported(outputs, tmp_path, capsys, kind) -> None:
    out, _ = outputs[kind]
    bad = tmp_path / out.name
    _flip_media_byte(out, bad)
    assert any("mismatch" in code for code in _failures(_store(bad)))
    assert _cli(["verify", bad]) == 1
    captured = capsys.readouterr()
    assert "INVALID (the bytes changed since signing)" in captured.out
    assert "does not verify: its bytes changed since signing" in captured.err
    assert _cli(["verify", out]) == 0  # the original still does


def test_verify_says_so_when_there_is_no_manifest(media, capsys) -> None:
    assert _cli(["verify", media / "faces" / "mark.jpg"]) == 1
    assert "has no C2PA manifest" in capsys.readouterr().err


def _certificate_pair(folder: Path) -> tuple[Path, Path, x509.Certificate]:
    """A CA and a leaf it issued, made here with `cryptography` alone."""
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    later = now + datetime.timedelta(days=30)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Newsroom CA")])
    leaf_name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Test Newsroom Signer"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Newsroom"),
        ]
    )

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(sign, False, False, False, False, not sign, not sign, False, False)

    ca = (
        x509.CertificateBuilder(
            ca_name, ca_name, ca_key.public_key(), 1001, now, later
        )  # issuer, subject
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder(ca_name, leaf_name, key.public_key(), 424242, now, later)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cert = folder / "signer.pem"
    cert.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_file = folder / "signer.key"
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    return cert, key_file, leaf


def test_a_given_certificate_is_the_signer(media, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "untouched"))
    cert, key, leaf = _certificate_pair(tmp_path)
    out = tmp_path / "given.mp4"
    video, photo = media / "videos" / "dance.mp4", media / "faces" / "mark.jpg"
    report = _run(video, photo, out, "--end", "1", "--sign-cert", cert, "--sign-key", key)
    store = _store(out)
    signer = _active(store)["signature_info"]
    assert signer["cert_serial_number"] == str(leaf.serial_number)
    assert signer["common_name"] == "Test Newsroom Signer"
    assert store["validation_state"] == "Valid" and set(_failures(store)) <= set(TRUST_ONLY)
    assert report["provenance"]["identity"] == "given"
    assert "Test Newsroom Signer" in report["provenance"]["signer"]
    assert not (tmp_path / "untouched").exists()  # no installation identity was made
    capsys.readouterr()
    assert _cli(["verify", out, "--trust", tmp_path / "ca.pem"]) == 0
    assert "signer trusted" in capsys.readouterr().out


def test_a_key_of_another_certificate_is_refused_before_anything(media, tmp_path, capsys) -> None:
    first = tmp_path / "a"
    second = tmp_path / "b"
    first.mkdir(), second.mkdir()
    cert, _, _ = _certificate_pair(first)
    _, other_key, _ = _certificate_pair(second)
    out = tmp_path / "out.mp4"
    argv = ["run", media / "videos" / "dance.mp4", "-s", media / "faces" / "mark.jpg", "-o", out]
    assert _cli([*argv, *FAST, "--sign-cert", cert, "--sign-key", other_key]) == 2
    assert "is not the key of the first certificate" in capsys.readouterr().err
    assert not out.exists() and not work_dir_for(out).exists()


def test_a_certificate_c2pa_refuses_fails_before_decoding(media, tmp_path, capsys) -> None:
    """A self-signed end-entity certificate: refused at the checks, nothing written."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lone signer")])
    cert = (
        x509.CertificateBuilder(
            name, name, key.public_key(), 7, now, now + datetime.timedelta(days=2)
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    out = tmp_path / "out.jpg"
    argv = ["run", media / "faces" / "beckham.jpg", "-s", media / "faces" / "mark.jpg", "-o", out]
    code = _cli([*argv, *FAST, "--sign-cert", tmp_path / "c.pem", "--sign-key", tmp_path / "k.pem"])
    assert code == 2
    assert "the C2PA library refuses --sign-cert CN=lone signer" in capsys.readouterr().err
    assert not out.exists()


def test_matroska_keeps_the_label_and_the_report_says_why(media, tmp_path, capsys) -> None:
    import av

    out = tmp_path / "out.mkv"
    report = _run(media / "videos" / "dance.mp4", media / "faces" / "mark.jpg", out, "--end", "1")
    assert report["provenance"] == {
        "form": "label",
        "reason": "C2PA cannot be embedded in .mkv files",
    }
    with av.open(str(out)) as container:
        assert is_labelled(container.metadata)
    with pytest.raises(c2pa.C2paError.NotSupported):
        c2pa.Reader(str(out))
    assert _cli(["verify", out]) == 1
    assert "has no C2PA manifest" in capsys.readouterr().err


def test_no_c2pa_leaves_the_label_only(media, tmp_path) -> None:
    out = tmp_path / "out.png"
    report = _run(media / "faces" / "beckham.jpg", media / "faces" / "mark.jpg", out, "--no-c2pa")
    assert report["provenance"] == {"form": "label", "reason": "--no-c2pa"}
    assert c2pa.Reader.try_create(str(out)) is None
    assert "Synthetic media" in read_png_text(out.read_bytes())["synthetic"]


def test_a_resumed_run_ends_with_one_signed_file(media, tmp_path) -> None:
    """Interrupted after some segments, resumed: the joined file is signed whole (its
    hash covers every frame) and nothing was ever signed or left beside it."""
    import av

    video = media / "videos" / "dance.mp4"
    out = tmp_path / "out.mp4"
    opts = {"segment_s": 0.5, "progress": "quiet"}
    with pytest.raises(NoFaceError):
        ghost_engine.swap_video(
            video, [], out, stages=[MarkStage(fail_at=40, error=NoFaceError("stop"))], **opts
        )
    assert not out.exists()
    report = ghost_engine.swap_video(video, [], out, stages=[MarkStage()], resume=True, **opts)
    assert report.resumed_segments >= 1
    assert report.provenance["form"] == "c2pa"
    store = _store(out)
    assert store["validation_state"] == "Valid" and set(_failures(store)) <= set(TRUST_ONLY)
    titles = {
        i["title"]: i["metadata"]["org.ghost-engine.sha256"] for i in _active(store)["ingredients"]
    }
    assert titles == {"dance.mp4": _sha(video)}
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 66
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]


@pytest.mark.parametrize("suffix", [".mov", ".avi", ".m4v"])
def test_every_video_container_c2pa_carries_gets_a_valid_manifest(tmp_path, suffix) -> None:
    """The containers besides MP4 that the engine signs, signed as a job does (a
    finished temporary file replaced by its signed copy) and read back by the library."""
    import av
    import numpy as np

    from ghost_engine.provenance.manifest import ProvenanceConfig
    from ghost_engine.provenance.sign import seal_file

    temp = tmp_path / f"partial{suffix}"
    codec = "mpeg4" if suffix == ".avi" else "libx264"
    with av.open(str(temp), "w") as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            image = np.full((48, 64, 3), 20 * i, np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode(None))
    target = tmp_path / "target.bin"
    target.write_bytes(b"the target")
    inputs = [("target", target)]
    sealed = seal_file(
        temp, tmp_path / "scratch", tmp_path / f"out{suffix}", ProvenanceConfig(), inputs
    )
    assert sealed.form == "c2pa"
    store = _store(temp)
    assert store["validation_state"] == "Valid" and set(_failures(store)) <= set(TRUST_ONLY)
    ingredient = _active(store)["ingredients"][0]
    assert (
        ingredient["metadata"]["org.ghost-engine.sha256"]
        == hashlib.sha256(b"the target").hexdigest()
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([temp.name, target.name])
    with av.open(str(temp)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 10


def test_a_signing_failure_leaves_no_output_and_resume_signs(media, tmp_path, monkeypatch) -> None:
    """The library fails while signing the joined file: nothing appears at the output
    (no unsigned file either), the segments stay, and --resume ends with a signed file."""
    from ghost_engine.errors import OutputError

    video = media / "videos" / "dance.mp4"
    out = tmp_path / "out.mp4"
    opts = {"segment_s": 0.5, "progress": "quiet"}
    original = c2pa.Builder.sign

    def failing(self, signer, mime, *args):
        if mime == "video/mp4":
            raise c2pa.C2paError("disk on fire")
        return original(self, signer, mime, *args)

    monkeypatch.setattr(c2pa.Builder, "sign", failing)
    with pytest.raises(OutputError, match="C2PA signing failed: disk on fire"):
        ghost_engine.swap_video(video, [], out, stages=[MarkStage()], **opts)
    assert not out.exists()
    work = work_dir_for(out)
    assert sorted(os.listdir(tmp_path)) == [work.name]  # no partial, no unsigned copy
    assert not any(name.startswith("signing") for name in os.listdir(work))
    monkeypatch.setattr(c2pa.Builder, "sign", original)
    report = ghost_engine.swap_video(video, [], out, stages=[MarkStage()], resume=True, **opts)
    assert report.resumed_segments >= 1 and report.provenance["form"] == "c2pa"
    assert _store(out)["validation_state"] == "Valid"
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]
