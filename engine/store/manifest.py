"""The model manifest: every model file the engine uses, described as data.

The packaged `ghost_engine/data/models.json` is the default; a user (or a test) can point
at another file with the same layout, e.g. for a private mirror with extra entries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ghost_engine.errors import UserInputError

KINDS = ("pth", "onnx")


@dataclass(frozen=True)
class TensorSpec:
    """What one ONNX input or output must look like; None fields are not checked.

    `dims` maps an axis (negative counts from the end) to its required size; a symbolic
    (dynamic) axis in the file is accepted for any required size.
    """

    name: str | None = None
    ranks: tuple[int, ...] = ()
    dims: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class OnnxSignature:
    """The input and output tensors an ONNX file must have, in order."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


@dataclass(frozen=True)
class ArchiveSource:
    """The model file is one member of a zip archive that is downloaded whole."""

    file: str
    member: str
    size: int | None = None
    sha256: str | None = None
    source: str = ""  # where the published size and hash were read, when known


@dataclass(frozen=True)
class ModelEntry:
    """One model file: where it comes from, how to check it, what it is for."""

    name: str
    role: str
    file: str
    kind: str
    urls: tuple[str, ...]
    licence: str
    licence_note: str = ""
    network: str | None = None
    size: int | None = None
    sha256: str | None = None
    archive: ArchiveSource | None = None
    signature: OnnxSignature | None = None
    source: str = ""  # where the published size and hash were read, when known

    @property
    def has_published_hash(self) -> bool:
        """True when the manifest states the file's SHA-256 (not only a first-use pin)."""
        return self.sha256 is not None

    @property
    def download_file(self) -> str:
        """The name of what is fetched: the archive for archive members, else the file."""
        return self.archive.file if self.archive else self.file


@dataclass(frozen=True)
class Manifest:
    """All entries by name, plus named packs (lists of entry names)."""

    entries: dict[str, ModelEntry]
    packs: dict[str, tuple[str, ...]] = field(default_factory=dict)
    source: str = "<packaged>"

    def entry(self, name: str) -> ModelEntry:
        """The entry called `name`, or a clear error listing the known ones."""
        try:
            return self.entries[name]
        except KeyError:
            raise UserInputError(
                f"unknown model {name!r}; known models: {', '.join(sorted(self.entries))} "
                f"(see 'ghost-engine models list')",
                value=name,
                allowed=sorted(self.entries),
            ) from None

    def pack(self, name: str) -> tuple[str, ...]:
        """The model names in pack `name`, or a clear error listing the packs."""
        try:
            return self.packs[name]
        except KeyError:
            raise UserInputError(
                f"unknown pack {name!r}; known packs: {', '.join(sorted(self.packs))}",
                option="--pack",
                value=name,
                allowed=sorted(self.packs),
            ) from None


def load_manifest(path: str | Path | None = None) -> Manifest:
    """The packaged manifest, or the one at `path`; a malformed file raises UserInputError."""
    if path is None:
        text = resources.files("ghost_engine").joinpath("data/models.json").read_text("utf-8")
        source = "<packaged models.json>"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise UserInputError(
                f"cannot read the model manifest {path}: {exc}", path=path
            ) from exc
        source = str(path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserInputError(
            f"model manifest {source} is not valid JSON: {exc}", path=path
        ) from exc
    try:
        return parse_manifest(raw, source)
    except UserInputError as exc:
        if path is not None and exc.path is None:
            exc.path = str(path)  # the entry-level checks name the file only in their text
        raise


def parse_manifest(raw: object, source: str = "<memory>") -> Manifest:
    """Check and convert the JSON form; every problem names the entry and the field."""
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list):
        raise UserInputError(f"model manifest {source} needs a top-level 'models' list")
    entries: dict[str, ModelEntry] = {}
    for item in raw["models"]:
        entry = _parse_entry(item, source)
        if entry.name in entries:
            raise UserInputError(f"model manifest {source} lists {entry.name!r} twice")
        entries[entry.name] = entry
    packs: dict[str, tuple[str, ...]] = {}
    for pack, names in (raw.get("packs") or {}).items():
        unknown = [n for n in names if n not in entries]
        if unknown:
            raise UserInputError(f"model manifest {source}: pack {pack!r} names {unknown}")
        packs[pack] = tuple(names)
    return Manifest(entries=entries, packs=packs, source=source)


def _parse_entry(item: object, source: str) -> ModelEntry:
    if not isinstance(item, dict):
        raise UserInputError(f"model manifest {source}: every model must be an object")
    where = f"model manifest {source}, entry {item.get('name')!r}"
    for key in ("name", "role", "file", "kind", "licence"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise UserInputError(f"{where}: field {key!r} must be a non-empty string")
    if item["kind"] not in KINDS:
        raise UserInputError(f"{where}: kind {item['kind']!r} is not one of {KINDS}")
    if item["kind"] == "pth" and not item.get("network"):
        raise UserInputError(f"{where}: a .pth entry needs the 'network' it must load into")
    if "/" in item["file"] or "\\" in item["file"] or item["file"].startswith("."):
        raise UserInputError(f"{where}: 'file' must be a plain file name")
    archive = item.get("archive")
    signature = item.get("signature")
    return ModelEntry(
        name=item["name"],
        role=item["role"],
        file=item["file"],
        kind=item["kind"],
        urls=tuple(item.get("urls") or ()),
        licence=item["licence"],
        licence_note=item.get("licence_note", ""),
        network=item.get("network"),
        size=_size_or_none(item.get("size"), where),
        sha256=_hash_or_none(item.get("sha256"), where),
        archive=_parse_archive(archive, where) if archive else None,
        signature=_parse_signature(signature, where) if signature else None,
        source=_source(item, where),
    )


def _source(item: dict, where: str) -> str:
    """Where a published size or hash was read (a URL or package file; '' when unstated)."""
    source = item.get("source") or ""
    if not isinstance(source, str):
        raise UserInputError(f"{where}: 'source' must be a string (where the hash was read)")
    return source


def _size_or_none(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UserInputError(f"{where}: size {value!r} is not a positive whole number of bytes")
    return value


def _hash_or_none(value: object, where: str) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise UserInputError(f"{where}: sha256 {value!r} is not 64 hex digits")
    return text


def _parse_archive(raw: dict, where: str) -> ArchiveSource:
    if not raw.get("file") or not raw.get("member"):
        raise UserInputError(f"{where}: 'archive' needs 'file' and 'member'")
    return ArchiveSource(
        file=raw["file"],
        member=raw["member"],
        size=_size_or_none(raw.get("size"), where),
        sha256=_hash_or_none(raw.get("sha256"), where),
        source=_source(raw, where),
    )


def _parse_signature(raw: dict, where: str) -> OnnxSignature:
    def tensor(spec: dict) -> TensorSpec:
        ranks = spec.get("rank") or ()
        ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
        dims = tuple((int(axis), int(size)) for axis, size in (spec.get("dims") or {}).items())
        return TensorSpec(name=spec.get("name"), ranks=ranks, dims=dims)

    try:
        return OnnxSignature(
            inputs=tuple(tensor(s) for s in raw.get("inputs", ())),
            outputs=tuple(tensor(s) for s in raw.get("outputs", ())),
        )
    except (TypeError, ValueError, AttributeError) as exc:
        raise UserInputError(f"{where}: malformed 'signature': {exc}") from exc
