"""Who signs the manifests: the user's certificate and key, or an identity made once per
installation.

The installation identity is a small certificate authority (a self-signed root) and a
leaf signing certificate it issued (ES256, digitalSignature, the emailProtection
extended key use): C2PA signers refuse a self-signed end-entity certificate, so the
root exists only to issue the leaf. It proves that the same installation signed two
files and that the bytes did not change since; it proves nothing about who runs the
installation, since nobody vouches for the root (see the README's "Provenance").

A user who has a certificate gives it per run (`--sign-cert`, `--sign-key`) or once, in
`signer.toml` in the signing folder (`cert = "signer.pem"`, `key = "signer.key"`, paths
relative to that folder); then no installation identity is made.

The installation identity lives in one file, `identity.pem` (private key, leaf, root;
mode 0600) in the signing folder: `$GHOST_ENGINE_SIGNING_DIR`, else
`$XDG_CONFIG_HOME/ghost-engine/signing`, else `~/.config/ghost-engine/signing`. One file
keeps the key and its certificate a pair whatever happens; it appears whole (written
beside, then linked into place, so two first runs at once agree on one identity).
`ca.pem`, the root alone, is written beside it for anyone who chooses to trust this
installation.
"""

from __future__ import annotations

import datetime
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ghost_engine.errors import OutputError, UserInputError, one_line
from ghost_engine.provenance.library import crypto_x509

SIGNING_DIR_ENV = "GHOST_ENGINE_SIGNING_DIR"
IDENTITY_NAME = "identity.pem"
CONFIG_NAME = "signer.toml"  # the user's own pair, for every run: cert = "...", key = "..."
ROOT_NAME = "ca.pem"
ORGANISATION = "ghost-engine installation (self-signed - nobody vouches for it)"
VALID_DAYS = 3650
GIVEN, INSTALLATION = "given", "installation"


@dataclass(frozen=True)
class SigningIdentity:
    """A certificate chain (leaf first, PEM) and the leaf's private key (PEM).

    `origin` is "given" (the user's --sign-cert/--sign-key) or "installation";
    `anchor_pem` is the root that chain ends in when this installation made it (the
    one `verify` trusts by default on this machine), else None.
    """

    chain_pem: bytes
    key_pem: bytes
    origin: str
    anchor_pem: bytes | None = None

    @property
    def subject(self) -> str:
        """The leaf certificate's subject, as RFC 4514 text (`CN=...,O=...`)."""
        x509 = crypto_x509()
        return str(x509.load_pem_x509_certificates(self.chain_pem)[0].subject.rfc4514_string())


def signing_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the installation identity lives (see the module's docstring)."""
    env = os.environ if env is None else env
    if env.get(SIGNING_DIR_ENV):
        return Path(env[SIGNING_DIR_ENV])
    config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "ghost-engine" / "signing"


def given_identity(cert: Path, key: Path) -> SigningIdentity:
    """The user's certificate chain and private key, checked to be a pair.

    Why check here: a key that does not match its certificate, or a file that is not
    PEM, would otherwise surface as an opaque signing failure after the whole run.
    """
    from cryptography.hazmat.primitives import serialization

    x509 = crypto_x509()
    chain_pem = _read(cert, "--sign-cert")
    key_pem = _read(key, "--sign-key")
    try:
        chain = x509.load_pem_x509_certificates(chain_pem)
    except ValueError as exc:
        raise UserInputError(
            f"--sign-cert {one_line(str(cert))} holds no PEM certificate; give the signing "
            "certificate (then its issuers) in PEM",
            option="--sign-cert",
            path=cert,
        ) from exc
    try:
        private = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise UserInputError(
            f"--sign-key {one_line(str(key))} is not an unencrypted PEM private key; "
            "give the certificate's key in PEM without a password",
            option="--sign-key",
            path=key,
        ) from exc
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    ours = private.public_key().public_bytes(serialization.Encoding.PEM, public)
    theirs = chain[0].public_key().public_bytes(serialization.Encoding.PEM, public)
    if ours != theirs:
        raise UserInputError(
            f"--sign-key {one_line(str(key))} is not the key of the first certificate in "
            f"--sign-cert {one_line(str(cert))}; give the matching pair",
            option="--sign-key",
            path=key,
        )
    return SigningIdentity(chain_pem, key_pem, GIVEN)


def configured_identity(folder: Path | None = None) -> SigningIdentity | None:
    """The pair `signer.toml` in the signing folder names, or None without that file."""
    import tomllib

    folder = signing_dir() if folder is None else Path(folder)
    path = folder / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserInputError(
            f"cannot read {one_line(str(path))}: {one_line(str(exc))}; fix it or remove it",
            path=path,
        ) from exc
    cert, key = table.get("cert"), table.get("key")
    if not isinstance(cert, str) or not isinstance(key, str):
        raise UserInputError(
            f'{one_line(str(path))} needs cert = "PEM file" and key = "PEM file"', path=path
        )
    return given_identity(folder / cert, folder / key)


def installation_identity(folder: Path | None = None) -> SigningIdentity:
    """This installation's identity, made the first time it is needed."""
    folder = signing_dir() if folder is None else Path(folder)
    path = folder / IDENTITY_NAME
    if not path.is_file():
        _create(folder, path)
    identity = _load_installation(path)
    root = folder / ROOT_NAME
    if identity.anchor_pem is not None and not root.is_file():
        _write_public(root, identity.anchor_pem)
    return identity


def _read(path: Path, option: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserInputError(
            f"cannot read {option} {one_line(str(path))}: {exc.strerror or exc}",
            option=option,
            path=path,
        ) from exc


def _load_installation(path: Path) -> SigningIdentity:
    x509 = crypto_x509()
    data = path.read_bytes()
    start = data.find(b"-----BEGIN CERTIFICATE-----")
    try:
        chain = x509.load_pem_x509_certificates(data[start:]) if start >= 0 else []
    except ValueError:
        chain = []
    if start <= 0 or len(chain) < 2:
        raise OutputError(
            f"the signing identity {one_line(str(path))} is damaged; remove it (a new one is "
            f"made) or point {SIGNING_DIR_ENV} at another folder",
            path=path,
        )
    from cryptography.hazmat.primitives import serialization

    root = chain[-1].public_bytes(serialization.Encoding.PEM)
    return SigningIdentity(data[start:], data[:start], INSTALLATION, anchor_pem=root)


def _create(folder: Path, path: Path) -> None:
    """Write a new identity beside `path` and link it into place; when another run got
    there first, its identity is kept (the link fails) and this one is dropped."""
    temp = folder / f".{IDENTITY_NAME}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(new_identity_pem())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
    except OSError as exc:
        raise OutputError(
            f"cannot write the signing identity in {one_line(str(folder))}: "
            f"{exc.strerror or exc}; point {SIGNING_DIR_ENV} at a writable folder or give "
            "--sign-cert and --sign-key",
            path=folder,
        ) from exc
    finally:
        temp.unlink(missing_ok=True)


def _write_public(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)  # a convenience copy only: the identity has the root


def new_identity_pem(days: int = VALID_DAYS) -> bytes:
    """A fresh root and leaf (ES256) as one PEM: the leaf's key, the leaf, the root.

    The names say it is an unvouched installation, with a random tag to tell two apart;
    nothing about the machine or its user goes into them.
    """
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    x509 = crypto_x509()
    tag = secrets.token_hex(4)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    until = now + datetime.timedelta(days=days)

    def name(common: str) -> object:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            ]
        )

    def usage(*, sign: bool, ca: bool) -> object:
        return x509.KeyUsage(
            digital_signature=sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = name(f"ghost-engine root {tag}")
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=False, ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), False)
        .sign(root_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(name(f"ghost-engine signer {tag}"))
        .issuer_name(root_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=True, ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), False
        )
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem + leaf.public_bytes(pem) + root.public_bytes(pem)
