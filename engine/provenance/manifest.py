"""What a manifest says, and which outputs can carry one.

The manifest states one edit: `c2pa.opened` on the target (C2PA requires an edit to
start from the asset it opened), then `c2pa.edited` with the IPTC digital source type
`trainedAlgorithmicMedia` and the software agent (ghost-engine and its version),
naming the target and every photo as ingredients. Each ingredient carries its file's
SHA-256 in its metadata, so a reader can tell which exact files went in without the
files themselves; no thumbnail of any photo is embedded (a source face stays out).
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ghost_engine import __version__

SOFTWARE = "ghost-engine"
DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
EDITED, OPENED = "c2pa.edited", "c2pa.opened"
SHA256_KEY = "org.ghost-engine.sha256"  # in each ingredient's metadata: the file's hash
ROLE_KEY = "org.ghost-engine.role"
C2PA, LABEL = "c2pa", "label"  # the two forms an output's provenance takes

# output suffix -> the MIME type the C2PA library embeds a manifest into
C2PA_FORMATS: dict[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".avi": "video/avi",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
}
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ProvenanceConfig:
    """How outputs are signed.

    `c2pa=False` leaves only the plain label (`--no-c2pa`). `sign_cert`/`sign_key`
    (both or neither) are the user's PEM certificate chain and key; without them the
    installation identity in `signing_dir` (None: the default folder, see
    `identity.signing_dir`) signs. `tsa_url` asks a timestamp authority to countersign
    (a network call; off by default).
    """

    c2pa: bool = True
    sign_cert: Path | None = None
    sign_key: Path | None = None
    signing_dir: Path | None = None
    tsa_url: str | None = None


@dataclass(frozen=True)
class Ingredient:
    """One file the output was made from: its role ("target", "source photo", "target
    face photo"), its name and SHA-256, and the MIME type the C2PA library reads it as
    (None: a format it cannot parse, described by name and hash only)."""

    role: str
    path: Path
    sha256: str
    mime: str | None

    @classmethod
    def of(cls, role: str, path: Path) -> Ingredient:
        return cls(role, Path(path), file_sha256(path), ingredient_mime(path))

    def definition(self, instance_id: str) -> dict:
        """The ingredient's JSON for the C2PA builder: the target is the parent (the
        asset edited), the photos components."""
        return {
            "title": self.path.name,
            "format": self.mime or "application/octet-stream",
            "relationship": "parentOf" if self.role == "target" else "componentOf",
            "instance_id": instance_id,
            "metadata": {SHA256_KEY: self.sha256, ROLE_KEY: self.role},
        }


def c2pa_format(path: Path) -> str | None:
    """The MIME type a C2PA manifest is embedded as for this output, or None when its
    container cannot carry one (Matroska, WebM, NUT: the plain label only)."""
    return C2PA_FORMATS.get(Path(path).suffix.lower())


def ingredient_mime(path: Path) -> str | None:
    """The MIME type for reading an ingredient, when the C2PA library parses that format."""
    suffix = Path(path).suffix.lower()
    if suffix in C2PA_FORMATS:
        return C2PA_FORMATS[suffix]
    guessed = mimetypes.guess_type(Path(path).name)[0]
    return guessed if guessed in ("image/webp", "image/tiff", "image/heic", "image/avif") else None


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces (a target can be gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def instance_ids(ingredients: Sequence[Ingredient]) -> list[str]:
    """Stable ids the actions refer to: "target", then "photo1", "photo2"..."""
    ids, photo = [], 0
    for ingredient in ingredients:
        if ingredient.role == "target":
            ids.append("target")
        else:
            photo += 1
            ids.append(f"photo{photo}")
    return ids


def manifest_definition(title: str, ingredients: Sequence[Ingredient]) -> dict:
    """The manifest's JSON; it lists the ingredients the C2PA library cannot read (the
    builder adds the others with their files)."""
    agent = {"name": SOFTWARE, "version": __version__}
    ids = instance_ids(ingredients)
    parents = [i for i, ing in zip(ids, ingredients, strict=True) if ing.role == "target"]
    actions: list[dict] = []
    if parents:
        actions.append({"action": OPENED, "parameters": {"ingredientIds": parents}})
    edited: dict = {
        "action": EDITED,
        "digitalSourceType": DIGITAL_SOURCE_TYPE,
        "softwareAgent": agent,
        "description": "faces replaced by a face-swap network (GHOST)",
        "parameters": {"ingredientIds": ids},
    }
    actions.append(edited)
    return {
        "claim_generator_info": [agent],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": actions}}],
        "ingredients": [
            ing.definition(i) for i, ing in zip(ids, ingredients, strict=True) if ing.mime is None
        ],
    }
