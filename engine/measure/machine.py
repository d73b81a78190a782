"""What a result was measured on: machine, software versions, commit and date.

Every published number carries this, so a reader can tell a laptop figure from a
server one and find the code that produced it.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path

from ghost_engine.runtime.devices import gpu_description

_REPO_ROOT = Path(__file__).resolve().parent.parent.parent


def cpu_model() -> str:
    """The CPU's marketing name (from /proc/cpuinfo on Linux, else `platform`)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def describe_machine() -> dict:
    """CPU model, cores, RAM, OS, Python and library versions (and the GPU, if any)."""
    import psutil

    return {
        "cpu": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_1min": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": _version("torch"),
        "onnxruntime": _version("onnxruntime"),
        "numpy": _version("numpy"),
        "opencv": _version("opencv-python-headless"),
        "av": _version("av"),
        "gpu": gpu_description(),
    }


def git_commit(root: Path = _REPO_ROOT) -> str:
    """`git rev-parse HEAD` of the checkout (with `+dirty` when files are modified), or
    'unknown' for an installed copy without a repository."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    commit = head.stdout.strip()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=10,
    )
    return commit + ("+dirty" if status.stdout.strip() else "")


def timestamp() -> str:
    """Now, in UTC, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()  # noqa: UP017 (3.10)


def provenance() -> dict:
    """The block every results file starts with: machine, commit, date."""
    return {"date": timestamp(), "commit": git_commit(), "machine": describe_machine()}
