"""Shared fixtures: where the golden vectors and real media are, and how to miss them.

Shared material is read in place. Where it is absent a test is skipped with the reason,
except under CI (`CI=true`), which always has it: there a missing folder is a failure.
The same rule covers everything else a test may lack (`skip_or_fail`): a reference
package that is not installed (`require_module`), a platform feature. Under CI nothing
is skipped in silence: what cannot run there fails and says why.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

from ghost_engine.shared_paths import golden_dir, media_dir


@pytest.fixture(autouse=True, scope="session")
def _signing_identity_in_a_temporary_folder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[None]:
    """Outputs are signed by default with a per-installation identity; the suite's runs
    (in-process and child processes alike) make and use one in a temporary folder, never
    in the user's ~/.config. Tests of the folder lookup set their own variables."""
    from ghost_engine.provenance.identity import SIGNING_DIR_ENV

    before = os.environ.get(SIGNING_DIR_ENV)
    os.environ[SIGNING_DIR_ENV] = str(tmp_path_factory.mktemp("signing"))
    yield
    if before is None:
        os.environ.pop(SIGNING_DIR_ENV, None)
    else:
        os.environ[SIGNING_DIR_ENV] = before


def on_ci() -> bool:
    """Whether this run is CI's (`CI=true`), where every test must run."""
    return os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the calling test with `reason`, or fail it under CI."""
    if on_ci():
        pytest.fail(reason + "; CI must run this test")
    pytest.skip(reason)


def require_module(name: str, reason: str) -> ModuleType:
    """The module `name`; where it cannot be imported the test is skipped with `reason`
    and the import error, or fails under CI."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        skip_or_fail(f"{reason}: cannot import {name} ({exc})")


def _require(path: Path, what: str, env_var: str) -> Path:
    if path.exists():
        return path
    skip_or_fail(f"{what} not found at {path} (set {env_var} to its location)")


@pytest.fixture(scope="session")
def golden() -> Path:
    """Folder of golden vectors (`../shared/golden`)."""
    return _require(golden_dir(), "golden vectors", "GHOST_ENGINE_GOLDEN")


@pytest.fixture(scope="session")
def media() -> Path:
    """Folder of real test media (`../shared/media`)."""
    return _require(media_dir(), "test media", "GHOST_ENGINE_MEDIA")


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """PyTorch computes on `count` threads inside, on as many as before after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """The test computes on one PyTorch thread (set back after); modules whose tests all
    need it say `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    with torch_threads(1):
        yield
