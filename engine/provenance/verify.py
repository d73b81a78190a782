"""Read a file's C2PA manifest back and judge it with the C2PA library's own validation.

Two questions are kept apart. Integrity: is the signature good and do the bytes still
match the hashes the manifest signed (any changed byte of the media data shows as a
`...Hash.mismatch` failure)? Trust: does the signer's chain end in a root the reader
chose to trust? Nothing is trusted by default except, on the machine that made it, this
installation's own root (so "trusted" here means "signed by this installation"); other
roots are passed in as PEM files (`--trust`). No network is used: no trust list is
fetched and no certificate revocation is asked.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ghost_engine.errors import UserInputError, one_line
from ghost_engine.provenance.identity import IDENTITY_NAME, ROOT_NAME, signing_dir
from ghost_engine.provenance.library import c2pa_module
from ghost_engine.provenance.manifest import EDITED, ROLE_KEY, SHA256_KEY

# failure codes about trust, not about the bytes or the signature
_TRUST_CODES = ("signingCredential.untrusted", "signingCredential.ocsp", "timeStamp.untrusted")


@dataclass
class Verification:
    """What `verify_file` found. `state` is the library's ("Invalid", "Valid" or
    "Trusted"; None without a manifest); `intact` is True when the signature and every
    hash check out; `trusted` when the signer chains to a root in `anchors`."""

    path: str
    has_manifest: bool
    state: str | None = None
    intact: bool = False
    trusted: bool = False
    signer: dict = field(default_factory=dict)
    generator: list[dict] = field(default_factory=list)
    actions: list[dict] = field(default_factory=list)
    ingredients: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)
    anchors: list[str] = field(default_factory=list)

    @property
    def changed_bytes(self) -> bool:
        """A hash of the media (or of a part of the manifest) no longer matches."""
        return any("mismatch" in f.get("code", "").lower() for f in self.failures)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["changed_bytes"] = self.changed_bytes
        return data

    def lines(self) -> list[str]:
        """The human report `ghost-engine verify` prints."""
        if not self.has_manifest:
            return [f"{self.path}: no C2PA manifest"]
        out = [f"{self.path}: C2PA manifest, {self.verdict()}"]
        who = self.signer
        out.append(
            f"  signed by: {who.get('common_name') or '?'} (issuer {who.get('issuer') or '?'}, "
            f"serial {who.get('cert_serial_number') or '?'}, {who.get('alg') or '?'})"
        )
        for tool in self.generator:
            out.append(f"  made with: {tool.get('name')} {tool.get('version', '')}".rstrip())
        for action in self.actions:
            agent = action.get("softwareAgent") or {}
            agent_text = f" by {agent.get('name')} {agent.get('version', '')}" if agent else ""
            source = action.get("digitalSourceType", "")
            source_text = f" ({source.rsplit('/', 1)[-1]})" if source else ""
            out.append(f"  action: {action.get('action')}{agent_text.rstrip()}{source_text}")
        for ing in self.ingredients:
            digest = ing.get("sha256") or "no hash recorded"
            out.append(
                f"  from: {ing.get('title')} [{ing.get('role') or ing.get('relationship')}] "
                f"sha256 {digest}"
            )
        for failure in self.failures:
            out.append(f"  failure: {failure.get('code')}: {failure.get('explanation', '')}")
        return out

    def verdict(self) -> str:
        if not self.intact:
            what = "the bytes changed since signing" if self.changed_bytes else "invalid"
            return f"INVALID ({what})"
        if self.trusted:
            return "valid, the bytes match, signer trusted"
        return "valid, the bytes match, signer not in any trusted list (see --trust)"


def default_anchors() -> list[Path]:
    """This installation's root, when it has made one (reading never makes one)."""
    folder = signing_dir()
    root = folder / ROOT_NAME
    return [root] if root.is_file() and (folder / IDENTITY_NAME).is_file() else []


def verify_file(path: Path, anchors: Sequence[Path] | None = None) -> Verification:
    """Validate `path`'s manifest; `anchors` are PEM files of roots to trust (None: the
    installation's own, see `default_anchors`)."""
    c2pa = c2pa_module()
    path = Path(path)
    anchors = default_anchors() if anchors is None else list(anchors)
    pem = "".join(_read_anchor(a) for a in anchors)
    settings: dict[str, Any] = {"verify": {"ocsp_fetch": False}}
    if pem:
        settings["trust"] = {"user_anchors": pem}
    try:
        context = c2pa.Context(settings=c2pa.Settings.from_dict(settings))
        reader = c2pa.Reader.try_create(str(path), None, None, context)
    except c2pa.C2paError.NotSupported:
        reader = None  # a format that cannot carry a manifest (Matroska, WebM...)
    except c2pa.C2paError as exc:
        raise UserInputError(
            f"cannot read {one_line(str(path))} for C2PA: {one_line(str(exc))}", path=path
        ) from exc
    result = Verification(
        str(path), has_manifest=reader is not None, anchors=[str(a) for a in anchors]
    )
    if reader is None:
        return result
    with reader:
        store = json.loads(reader.json())
    _fill(result, store)
    return result


def _read_anchor(path: Path) -> str:
    try:
        return Path(path).read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(
            f"cannot read the trust anchor {one_line(str(path))}; give a PEM certificate file",
            option="--trust",
            path=path,
        ) from exc


def _fill(result: Verification, store: dict) -> None:
    manifest = store.get("manifests", {}).get(store.get("active_manifest"), {})
    results = store.get("validation_results", {}).get("activeManifest", {})
    result.state = store.get("validation_state")
    result.failures = list(results.get("failure", []))
    result.intact = result.state in ("Valid", "Trusted") and not [
        f for f in result.failures if not f.get("code", "").startswith(_TRUST_CODES)
    ]
    result.trusted = result.state == "Trusted"
    result.signer = dict(manifest.get("signature_info", {}))
    result.generator = [
        {k: v for k, v in tool.items() if k in ("name", "version")}
        for tool in manifest.get("claim_generator_info", [])
    ]
    for assertion in manifest.get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            result.actions.extend(assertion.get("data", {}).get("actions", []))
    for ing in manifest.get("ingredients", []):
        meta = ing.get("metadata", {}) or {}
        result.ingredients.append(
            {
                "title": ing.get("title"),
                "format": ing.get("format"),
                "relationship": ing.get("relationship"),
                "role": meta.get(ROLE_KEY),
                "sha256": meta.get(SHA256_KEY),
            }
        )


def edit_action(result: Verification) -> dict | None:
    """The `c2pa.edited` action of a verified manifest, if it has one."""
    return next((a for a in result.actions if a.get("action") == EDITED), None)
