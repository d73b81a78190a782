"""`ghost-engine verify FILE`: read a file's C2PA manifest and say who made it, with
what, from what, and whether its bytes still match; and the signing options `run` takes.

The report goes to stdout (`--json`: as JSON); a file without a manifest, or whose
manifest does not validate, ends with one line on stderr and exit code 1, so scripts can
test it. A signer outside every trusted root is reported, not failed: with the default
self-signed identity that is the normal case anywhere but the machine that signed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ghost_engine.errors import GhostEngineError, one_line

F = TypeVar("F", bound=Callable[..., Any])

_PEM = click.Path(exists=True, dir_okay=False, path_type=Path)


def provenance_options(command: F) -> F:
    """`--sign-cert`, `--sign-key`, `--tsa-url` and `--no-c2pa` for `run`."""
    options = [
        click.option(
            "--sign-cert",
            type=_PEM,
            envvar="GHOST_ENGINE_SIGN_CERT",
            metavar="PEM",
            help="Certificate chain (PEM, signer first) that signs the output's C2PA "
            "manifest (default: this installation's self-signed identity; see the README).",
        ),
        click.option(
            "--sign-key",
            type=_PEM,
            envvar="GHOST_ENGINE_SIGN_KEY",
            metavar="PEM",
            help="Private key (PEM, ES256) of --sign-cert.",
        ),
        click.option(
            "--tsa-url",
            metavar="URL",
            help="Timestamp authority that countersigns the manifest (a network call; "
            "off by default).",
        ),
        click.option(
            "--no-c2pa",
            is_flag=True,
            help="No C2PA manifest: the output carries the plain synthetic-media label only.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def provenance_config(opts: dict) -> Any:
    """The `ProvenanceConfig` the `run` options ask for."""
    from ghost_engine.provenance.manifest import ProvenanceConfig

    return ProvenanceConfig(
        c2pa=not opts["no_c2pa"],
        sign_cert=opts["sign_cert"],
        sign_key=opts["sign_key"],
        tsa_url=opts["tsa_url"],
    )


@click.command("verify")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--trust",
    "trust",
    multiple=True,
    type=_PEM,
    metavar="PEM",
    help="Root certificate(s) to trust (repeatable); default: this installation's own root.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
def verify(file: Path, trust: tuple[Path, ...], as_json: bool) -> None:
    """Check FILE's C2PA content credentials: the signer, the software, the
    ingredients (by SHA-256) and whether the bytes still match what was signed."""
    from ghost_engine.provenance.verify import verify_file

    result = verify_file(file, list(trust) if trust else None)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        for line in result.lines():
            click.echo(one_line(line))
    if not result.has_manifest:
        raise GhostEngineError(
            f"{one_line(str(file))} has no C2PA manifest (it may carry the plain label only)",
            path=file,
        )
    if not result.intact:
        what = "its bytes changed since signing" if result.changed_bytes else "it is invalid"
        raise GhostEngineError(f"{one_line(str(file))} does not verify: {what}", path=file)
