"""The signing identity: made once per installation however many runs race for it, kept
private, refused with a way out when damaged; a user's pair named once in signer.toml
signs instead."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from test_provenance import _certificate_pair

from ghost_engine.errors import OutputError, UserInputError
from ghost_engine.provenance.identity import (
    GIVEN,
    INSTALLATION,
    installation_identity,
    signing_dir,
)
from ghost_engine.provenance.manifest import ProvenanceConfig
from ghost_engine.provenance.sign import check_provenance, resolve_identity


def test_signing_dir_follows_the_environment(tmp_path) -> None:
    assert signing_dir({"GHOST_ENGINE_SIGNING_DIR": "/x/y"}) == Path("/x/y")
    assert signing_dir({"XDG_CONFIG_HOME": "/c"}) == Path("/c/ghost-engine/signing")
    assert signing_dir({}) == Path.home() / ".config" / "ghost-engine" / "signing"


def test_racing_first_runs_agree_on_one_identity(tmp_path) -> None:
    folder = tmp_path / "signing"
    start = threading.Barrier(6)
    chains: list[bytes] = []

    def first_run() -> None:
        start.wait()
        chains.append(installation_identity(folder).chain_pem)

    threads = [threading.Thread(target=first_run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(chains) == 6 and len(set(chains)) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["ca.pem", "identity.pem"]
    assert stat.S_IMODE((folder / "identity.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    identity = installation_identity(folder)
    assert identity.origin == INSTALLATION and identity.chain_pem == chains[0]
    leaf = x509.load_pem_x509_certificates(identity.chain_pem)[0]
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_damaged_identity_is_refused_with_the_way_out(tmp_path) -> None:
    folder = tmp_path / "signing"
    folder.mkdir()
    (folder / "identity.pem").write_text("half a key")
    with pytest.raises(OutputError, match="is damaged; remove it .* GHOST_ENGINE_SIGNING_DIR"):
        installation_identity(folder)


def test_signer_toml_names_the_users_pair(tmp_path) -> None:
    folder = tmp_path / "signing"
    folder.mkdir()
    _certificate_pair(folder)
    (folder / "signer.toml").write_text('cert = "signer.pem"\nkey = "signer.key"\n')
    config = ProvenanceConfig(signing_dir=folder)
    identity = resolve_identity(config)
    assert identity.origin == GIVEN and "Test Newsroom Signer" in identity.subject
    check_provenance(config, tmp_path / "out.mp4")  # the C2PA library accepts it
    assert not (folder / "identity.pem").exists()


def test_a_cert_without_its_key_is_refused(tmp_path) -> None:
    with pytest.raises(UserInputError, match="--sign-cert and --sign-key go together"):
        resolve_identity(ProvenanceConfig(sign_cert=tmp_path / "c.pem"))


def test_without_the_c2pa_library_the_message_says_what_to_do(monkeypatch, tmp_path) -> None:
    import sys

    from ghost_engine.errors import OptionalDependencyError

    monkeypatch.setitem(sys.modules, "c2pa", None)  # `import c2pa` now fails
    config = ProvenanceConfig(signing_dir=tmp_path)
    with pytest.raises(OptionalDependencyError, match="pip install c2pa-python==0.38.1.*--no-c2pa"):
        check_provenance(config, tmp_path / "out.png")
    check_provenance(ProvenanceConfig(c2pa=False), tmp_path / "out.png")  # the label needs none
