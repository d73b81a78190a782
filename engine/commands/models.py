"""`ghost-engine models`: list, download, verify, import and locate model files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import click

from ghost_engine.choices import DEFAULT_PACK
from ghost_engine.commands.common import count_option, shown
from ghost_engine.errors import CheckpointError, GhostEngineError, UserInputError
from ghost_engine.store import (
    UNVERIFIED_SOURCE,
    DownloadConfig,
    ModelStore,
    Progress,
    VerifyResult,
    default_models_dir,
    import_models,
)

MB = 1024 * 1024


def _store_options(func: Callable) -> Callable:
    func = click.option(
        "--manifest",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="GHOST_ENGINE_MODEL_MANIFEST",
        help="Use this manifest instead of the packaged one (e.g. a private mirror's).",
    )(func)
    return click.option(
        "--models-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Model cache for this run (default: {default_models_dir()}; "
        "GHOST_ENGINE_HOME moves it).",
    )(func)


def _store(models_dir: Path | None, manifest: Path | None, **config) -> ModelStore:
    return ModelStore(
        models_dir,
        manifest_path=manifest,
        config=DownloadConfig(**config) if config else None,
        progress=Progress(),
    )


@click.group("models")
def models() -> None:
    """List, download, verify and import the model files the engine uses."""


@models.command("list")
@_store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_(models_dir: Path | None, manifest: Path | None, as_json: bool) -> None:
    """What is installed, whether it is verified, its size and licence."""
    store = _store(models_dir, manifest)
    rows = [store.status(name) for name in store.manifest.entries]
    if as_json:
        out = [
            {
                "name": s.entry.name,
                "file": str(s.path),
                "present": s.present,
                "verified": s.verified,
                "size": s.size if s.present else s.entry.size,
                "licence": s.entry.licence,
                "role": s.entry.role,
                "safetensors": str(s.converted) if s.converted else None,
                "hash": store.hash_origin(s.entry),
                "hash_source": s.entry.source or None,
            }
            for s in rows
        ]
        click.echo(json.dumps({"models_dir": str(store.root), "models": out}, indent=2))
        return
    click.echo(f"model cache: {store.root}")
    width = max(len(s.entry.name) for s in rows)
    for s in rows:
        state = "verified" if s.verified else ("unverified" if s.present else "missing")
        size = s.size if s.present else s.entry.size
        size_text = f"{size / MB:9.1f} MB" if size is not None else "        ? MB"
        click.echo(f"{s.entry.name:<{width}}  {state:<10}  {size_text}  {s.entry.licence}")
    unpublished = [s.entry.name for s in rows if not s.entry.has_published_hash]
    if unpublished:
        click.echo(
            f"{UNVERIFIED_SOURCE} (no published hash: the first file that passes the "
            f"structure check is trusted): {', '.join(unpublished)}"
        )


@models.command("download")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Every model in the manifest.")
@click.option("--pack", help=f"A named set, e.g. '{DEFAULT_PACK}' (what 'run' needs).")
@click.option("--force", is_flag=True, help="Download again even if installed.")
@count_option("--jobs", 3, "Files at once.", high=16)
@count_option(
    "--retries", 4, "Further attempts per URL (waits 1, 2, 4... s between them).", low=0, high=20
)
@shown(
    "--timeout",
    kind=click.FloatRange(min=0.1),
    default=30.0,
    help="Seconds to wait for a connection or for the next bytes.",
)
@shown(
    "--deadline",
    kind=click.FloatRange(min=1.0),
    default=3600.0,
    help="Seconds one file may take in all, retries and mirrors included.",
)
@_store_options
def download(
    names: tuple[str, ...],
    all_: bool,
    pack: str | None,
    force: bool,
    jobs: int,
    retries: int,
    timeout: float,
    deadline: float,
    models_dir: Path | None,
    manifest: Path | None,
) -> None:
    """Fetch, verify and install models (resumable, retried, in parallel)."""
    store = _store(
        models_dir, manifest, jobs=jobs, retries=retries, timeout_s=timeout, deadline_s=deadline
    )
    wanted = list(names)
    if all_:
        wanted += list(store.manifest.entries)
    if pack:
        wanted += list(store.manifest.pack(pack))
    if not wanted:
        raise UserInputError(
            f"name the models to download, or use --all or --pack {DEFAULT_PACK} "
            f"(packs: {', '.join(sorted(store.manifest.packs))})",
            option="--pack",
            allowed=sorted(store.manifest.packs),
        )
    wanted = list(dict.fromkeys(wanted))
    paths = store.download(wanted, force=force)
    for name in wanted:
        click.echo(f"{name}: {paths[name]}")


@models.command("verify")
@click.argument("names", nargs=-1)
@_store_options
def verify(names: tuple[str, ...], models_dir: Path | None, manifest: Path | None) -> None:
    """Hash every installed file (or NAMES), then load it and check its structure.

    A file that fails is reported with both hashes and removed.
    """
    store = _store(models_dir, manifest)
    targets = list(names) or [n for n in store.manifest.entries if store.is_installed(n)]
    if not targets:
        click.echo(f"no model files installed in {store.root}")
        return
    failed = []
    for name in targets:
        try:
            result = store.verify(name)
        except GhostEngineError as exc:
            failed.append(name)
            click.echo(f"{name}: FAILED: {exc}", err=True)
            continue
        conv = f", safetensors {result.converted.name}" if result.converted else ""
        click.echo(f"{name}: ok sha256 {result.sha256}{conv} ({_trust_note(store, result)})")
    if failed:
        raise CheckpointError(
            f"{len(failed)} of {len(targets)} model files failed verification "
            f"({', '.join(failed)}); get them again with: {store.fix_command(failed)}",
            path=store.root,
        )


def _trust_note(store: ModelStore, result: VerifyResult) -> str:
    """Which hash the file matched, and so how far it can be trusted."""
    if store.entry(result.name).has_published_hash:
        return "matches the published hash"
    if result.pinned:
        return f"hash pinned in the lock file now: {UNVERIFIED_SOURCE}"
    return f"matches the lock file: {UNVERIFIED_SOURCE}"


@models.command("path")
@click.argument("name")
@_store_options
def path(name: str, models_dir: Path | None, manifest: Path | None) -> None:
    """Print the file to load for NAME (fails with the fixing command when missing)."""
    click.echo(str(_store(models_dir, manifest).path(name)))


@models.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace files that are already installed.")
@_store_options
def import_(source: Path, force: bool, models_dir: Path | None, manifest: Path | None) -> None:
    """Verify and install model files from a folder, a zip or one file (offline)."""
    store = _store(models_dir, manifest)
    report = import_models(store, source, force=force)
    for name, dest in report.imported.items():
        click.echo(f"{name}: imported as {dest}")
    for name in report.already:
        click.echo(f"{name}: already installed (use --force to replace)")
    for name, message in report.failed.items():
        click.echo(f"{name}: FAILED: {message}", err=True)
    if report.failed:
        raise CheckpointError(
            f"{len(report.failed)} files from {source} were not imported "
            f"({', '.join(report.failed)}); see the messages above",
            path=source,
        )
