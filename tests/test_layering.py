"""What each package may import (ARCHITECTURE.md's table), checked on the source.

Imports only a type checker sees (inside `if TYPE_CHECKING:`) are left out: they create
no dependency when the code runs. Function-level imports count like module-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FOLDERS = {
    "engine": "ghost_engine",
    "export": "ghost_engine.export",
    "kernels": "ghost_engine.kernels",
    "training": "ghost_engine.training",
}
BASE = {"ghost_engine", "errors", "types", "interfaces", "choices", "shared_paths"}
# part of ghost_engine -> the parts it may import besides itself (BASE for everyone
# but the base modules themselves, which have their own rows)
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "types": {"errors"},
    "interfaces": {"errors", "types"},
    "choices": {"errors", "runtime"},
    "shared_paths": {"errors"},
    "kernels": BASE | {"runtime"},
    "networks": BASE,
    "store": BASE | {"networks"},
    "runtime": BASE | {"networks"},
    "export": BASE | {"networks", "runtime", "store"},
    "video": BASE | {"kernels"},
    "provenance": BASE,
    "face": BASE | {"kernels", "networks", "runtime", "video"},
    "backend": BASE | {"kernels", "networks", "runtime", "video", "face"},
    "pipeline": BASE
    | {"kernels", "networks", "runtime", "video", "face", "backend", "store", "export"}
    | {"provenance"},
    "api": BASE | {"video", "face", "backend", "pipeline", "provenance"},
    "parallel": BASE | {"runtime", "video", "face", "backend", "pipeline", "store", "provenance"},
    "webcam": BASE | {"runtime", "video", "face", "backend", "pipeline"},
    "training": BASE | {"kernels", "networks", "runtime", "video", "face", "store"},
    "measure": BASE
    | {"kernels", "networks", "runtime", "video", "face", "backend", "store", "export"}
    | {"pipeline", "webcam", "parallel"},
    "ui": BASE | {"api", "face", "pipeline", "store", "video"},
    "commands": None,  # the command line may use everything
    "cli": None,
    "__main__": None,
}


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ghost_engine"


def _modules() -> list[tuple[str, Path]]:
    out = []
    for folder, name in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = path.relative_to(REPO / folder).with_suffix("")
            out.append((".".join([name, *rel.parts]).removesuffix(".__init__"), path))
    return out


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(module, imported names, line) of every ghost_engine import that runs."""
    tree = ast.parse(path.read_text())
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for n in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ghost_engine"):
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ghost_engine"):
                    found.append((alias.name, [], node.lineno))
    return found


def test_every_package_has_a_row() -> None:
    parts = {_part(module) for module, _ in _modules()}
    assert parts - {"ghost_engine"} <= set(ALLOWED), parts - set(ALLOWED)


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_imports_follow_the_layers(module: str, path: Path) -> None:
    part = _part(module)
    allowed = ALLOWED.get(part, BASE)
    wrong = []
    for target, names, line in _imports(path):
        targets = {_part(target)}
        if target == "ghost_engine":  # `from ghost_engine import networks`
            targets = {n if n in ALLOWED else "ghost_engine" for n in names}
        for t in targets - {part}:
            if allowed is not None and t not in allowed:
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {target} ({t})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_no_private_name_is_imported_from_another_module(module: str, path: Path) -> None:
    private = [
        f"{path.relative_to(REPO)}:{line} imports {name} from {target}"
        for target, names, line in _imports(path)
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not private, "\n".join(private)


def test_the_table_catches_an_upward_import(tmp_path: Path) -> None:
    """The check itself: a networks module importing the backend is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from ghost_engine.backend import open_backend\n")
    ((target, _, _),) = _imports(bad)
    assert _part(target) not in ALLOWED["networks"]
