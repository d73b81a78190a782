"""Embed a signed manifest into a finished file, before it takes the output's name.

The jobs call `seal_file` (videos: on the muxed temporary file, with a scratch path in
the run's work folder) or `seal_bytes` (images, which are small) after the plain label
is written and before `video.output.commit` renames the file into place. So a manifest
is only ever added to a whole file, and the output path shows the signed file or
nothing. `check_provenance` runs with the jobs' other checks: it resolves the identity
and signs a tiny image, so a certificate the C2PA library refuses fails the run before
any decoding, not after it.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ghost_engine.errors import OutputError, UserInputError, one_line
from ghost_engine.provenance.identity import (
    GIVEN,
    SigningIdentity,
    configured_identity,
    given_identity,
    installation_identity,
)
from ghost_engine.provenance.library import c2pa_module
from ghost_engine.provenance.manifest import (
    C2PA,
    DIGITAL_SOURCE_TYPE,
    LABEL,
    Ingredient,
    ProvenanceConfig,
    c2pa_format,
    instance_ids,
    manifest_definition,
)

Role = tuple[str, Path]  # ("target", path), ("source photo", path)...

# the smallest PNG (1x1 grey): what `check_provenance` signs to test the identity
_PROBE_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a49444154789c63680000008200816c3f8e660000000049454e44ae426082"
)
_PROBE_MANIFEST = {
    "title": "signing check",
    "assertions": [
        {
            "label": "c2pa.actions",
            "data": {
                "actions": [{"action": "c2pa.created", "digitalSourceType": DIGITAL_SOURCE_TYPE}]
            },
        }
    ],
}
_SETTINGS = {"builder": {"thumbnail": {"enabled": False}}}


@dataclass
class Sealed:
    """What an output got, for the run report: `form` "c2pa" (a signed manifest) or
    "label" (the plain label only, `reason` says why)."""

    form: str
    reason: str | None = None
    signer: str | None = None
    identity: str | None = None
    manifest: str | None = None
    sign_seconds: float = 0.0
    ingredients: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        data: dict[str, Any] = {"form": self.form}
        if self.form == LABEL:
            data["reason"] = self.reason
            return data
        data.update(
            signer=self.signer,
            identity=self.identity,
            manifest=self.manifest,
            sign_seconds=round(self.sign_seconds, 4),
            ingredients=self.ingredients,
        )
        return data


def label_only_reason(config: ProvenanceConfig, output: Path) -> str | None:
    """Why `output` gets the plain label only, or None when it gets a manifest."""
    if not config.c2pa:
        return "--no-c2pa"
    if c2pa_format(output) is None:
        return f"C2PA cannot be embedded in {Path(output).suffix or 'this'} files"
    return None


def resolve_identity(config: ProvenanceConfig) -> SigningIdentity:
    """The user's certificate and key when given (both), else the pair `signer.toml`
    names, else the installation's own identity."""
    if (config.sign_cert is None) != (config.sign_key is None):
        missing = "--sign-key" if config.sign_key is None else "--sign-cert"
        raise UserInputError(
            f"--sign-cert and --sign-key go together; give {missing} too",
            option=missing,
        )
    if config.sign_cert is not None and config.sign_key is not None:
        return given_identity(config.sign_cert, config.sign_key)
    configured = configured_identity(config.signing_dir)
    if configured is not None:
        return configured
    return installation_identity(config.signing_dir)


def check_provenance(config: ProvenanceConfig, output: Path) -> None:
    """Fail now, before any decoding, if `output` would need a manifest that cannot be
    signed (a missing library, a bad pair, a certificate C2PA refuses)."""
    if label_only_reason(config, output) is not None:
        return
    identity = resolve_identity(config)
    try:
        probe = io.BytesIO(_PROBE_PNG)
        _sign_stream(identity, config, _PROBE_MANIFEST, [], "image/png", probe, io.BytesIO())
    except OutputError as exc:
        raise _refused(identity, exc) from exc


def seal_file(
    temp: Path,
    scratch: Path,
    output: Path,
    config: ProvenanceConfig,
    inputs: Sequence[Role],
) -> Sealed:
    """Sign the finished file `temp` (it is replaced by its signed copy, written at
    `scratch` first, in the same file system) for the output named `output`; `inputs`
    are the files it was made from, by role (("target", path), ("source photo", path)...),
    hashed only when a manifest is made."""
    reason = label_only_reason(config, output)
    if reason is not None:
        return Sealed(LABEL, reason=reason)
    mime = c2pa_format(output)
    assert mime is not None  # label_only_reason said it has one
    identity = resolve_identity(config)
    started = time.perf_counter()
    ingredients = [Ingredient.of(role, path) for role, path in inputs]
    definition = manifest_definition(Path(output).name, ingredients)
    try:
        with Path(temp).open("rb") as source, Path(scratch).open("w+b") as dest:
            label = _sign_stream(identity, config, definition, ingredients, mime, source, dest)
            dest.flush()
            os.fsync(dest.fileno())
        os.replace(scratch, temp)
    except OSError as exc:
        Path(scratch).unlink(missing_ok=True)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(
            f"cannot write the signed copy of {one_line(str(output))}: {exc.strerror or exc}",
            path=output,
        ) from exc
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return _sealed(identity, label, ingredients, time.perf_counter() - started)


def seal_bytes(
    data: bytes, output: Path, config: ProvenanceConfig, inputs: Sequence[Role]
) -> tuple[bytes, Sealed]:
    """An encoded image with its manifest embedded (or as it was, for the label only);
    `inputs` as for `seal_file`."""
    reason = label_only_reason(config, output)
    if reason is not None:
        return data, Sealed(LABEL, reason=reason)
    mime = c2pa_format(output)
    assert mime is not None
    identity = resolve_identity(config)
    started = time.perf_counter()
    ingredients = [Ingredient.of(role, path) for role, path in inputs]
    definition = manifest_definition(Path(output).name, ingredients)
    dest = io.BytesIO()
    label = _sign_stream(identity, config, definition, ingredients, mime, io.BytesIO(data), dest)
    return dest.getvalue(), _sealed(identity, label, ingredients, time.perf_counter() - started)


def _sealed(
    identity: SigningIdentity, label: str, ingredients: Sequence[Ingredient], seconds: float
) -> Sealed:
    return Sealed(
        C2PA,
        signer=identity.subject,
        identity=identity.origin,
        manifest=label,
        sign_seconds=seconds,
        ingredients=[
            {"role": i.role, "title": i.path.name, "sha256": i.sha256} for i in ingredients
        ],
    )


def _sign_stream(
    identity: SigningIdentity,
    config: ProvenanceConfig,
    definition: dict,
    ingredients: Sequence[Ingredient],
    mime: str,
    source: Any,
    dest: Any,
) -> str:
    """Sign `source` into `dest` with the C2PA library; the new manifest's label."""
    c2pa = c2pa_module()
    try:
        info = c2pa.C2paSignerInfo(
            c2pa.C2paSigningAlg.ES256, identity.chain_pem, identity.key_pem, config.tsa_url
        )
        context = c2pa.Context(settings=c2pa.Settings.from_dict(_SETTINGS))
        with c2pa.Signer.from_info(info) as signer, c2pa.Builder(definition, context) as builder:
            for ingredient, instance_id in zip(ingredients, instance_ids(ingredients), strict=True):
                if ingredient.mime is not None:
                    _add_ingredient(builder, ingredient, instance_id)
            manifest = builder.sign(signer, mime, source, dest)
        with c2pa.Reader("application/c2pa", io.BytesIO(manifest)) as store:
            return str(json.loads(store.json()).get("active_manifest", ""))
    except c2pa.C2paError as exc:
        raise OutputError(f"C2PA signing failed: {one_line(str(exc))}") from exc


def _add_ingredient(builder: Any, ingredient: Ingredient, instance_id: str) -> None:
    """Added with its file, so a manifest the file already has becomes part of the
    output's history (formats the library cannot read are in the definition instead)."""
    with ingredient.path.open("rb") as fh:
        builder.add_ingredient(ingredient.definition(instance_id), ingredient.mime, fh)


def _refused(identity: SigningIdentity, exc: OutputError) -> UserInputError | OutputError:
    if identity.origin == GIVEN:
        return UserInputError(
            f"the C2PA library refuses --sign-cert {one_line(identity.subject)}: "
            f"{exc}; it needs an ES256 key and a certificate issued by a CA (not "
            "self-signed) with digitalSignature, an email-protection or document-signing "
            "extended key use and an authority key identifier",
            option="--sign-cert",
        )
    return exc
