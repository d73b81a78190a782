"""Every package folder must be listed in pyproject, or a wheel install would miss it."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _declared() -> tuple[set[str], dict[str, str]]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    return set(cfg["packages"]), cfg["package-dir"]


def _folder_of(package: str, mapping: dict[str, str]) -> Path:
    parts = package.split(".")
    for cut in range(len(parts), 0, -1):
        prefix = ".".join(parts[:cut])
        if prefix in mapping:
            return ROOT / mapping[prefix] / Path(*parts[cut:])
    raise AssertionError(f"{package} has no package-dir mapping")


def test_every_package_folder_is_declared() -> None:
    packages, mapping = _declared()
    found = set()
    for root_pkg, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            name = ".".join([root_pkg, *rel.parts]) if rel.parts else root_pkg
            found.add(name)
    assert found == packages, f"undeclared: {found - packages}, missing: {packages - found}"
    for package in packages:
        assert (_folder_of(package, mapping) / "__init__.py").is_file()
