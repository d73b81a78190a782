"""Lazy imports of the optional GPU packages (`pip install 'ghost-engine[cuda]'`).

Nothing here imports a GPU package at module import time. Each helper returns the module
or raises `OptionalDependencyError` saying what to install, or which driver library is
missing when the package is there but cannot load.

PyNvVideoCodec 2.2's `import` first asks NVENC's driver library (`libnvidia-encode.so.1`)
for its version, so a machine whose driver lacks NVENC's library (a container without the
driver's video capability, say) fails the import although NVDEC may work. Then the
package's decoder extension module is loaded on its own: it needs only `libcuda.so.1`
and opens NVDEC's `libnvcuvid.so.1` when a decoder is made, which is checked first.
`nvcodec_load_note(module)` says how a returned module was loaded.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.machinery
import importlib.util
import re
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from types import ModuleType

from ghost_engine.errors import OptionalDependencyError

# The `cuda` extra's requirements (pyproject.toml), named in every message.
CUPY_REQUIREMENT = "cupy-cuda13x>=13.6"
NUMBA_CUDA_REQUIREMENT = "numba-cuda>=0.10"
NVCODEC_REQUIREMENT = "PyNvVideoCodec>=2.2"  # 2.2 reports the stream time base
NVCODEC_MINIMUM = (2, 2)

# The NVIDIA driver's libraries the CUDA backend's packages open, and what each is.
DRIVER_LIBRARIES = {
    "libcuda.so.1": "the CUDA driver",
    "libnvcuvid.so.1": "NVDEC's driver library",
    "libnvidia-encode.so.1": "NVENC's driver library",
}
NVENC_LIBRARY = "libnvidia-encode.so.1"
NVDEC_LIBRARY = "libnvcuvid.so.1"
# PyNvVideoCodec's decoder extension modules, newest NVENC API first (its `__init__`
# picks one by the NVENC version; decoding is the same in both).
NVCODEC_NATIVE_MODULES = ("PyNvVideoCodec_130", "PyNvVideoCodec_121")
EXTENSION_SUFFIXES = importlib.machinery.EXTENSION_SUFFIXES

_SHARED_LIBRARY = re.compile(r"lib[\w+-]+\.so(?:\.\d+)*")
_NOTES: dict[int, str] = {}  # id(module) -> how it was loaded, for partial loads


def _import(name: str, package: str, purpose: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise OptionalDependencyError.for_extra(package, "cuda", purpose) from exc


def require_cupy() -> ModuleType:
    """The `cupy` module (device arrays for the CUDA backend)."""
    return _import("cupy", CUPY_REQUIREMENT, "The CUDA backend")


def require_numba_cuda() -> ModuleType:
    """`numba.cuda` (the on-device image kernels); numba-cuda provides it on new numba."""
    return _import("numba.cuda", NUMBA_CUDA_REQUIREMENT, "The CUDA image kernels")


def missing_library(error: BaseException | str) -> str | None:
    """The shared library an import error names (`libcuda.so.1`...), or None."""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    found = _SHARED_LIBRARY.search(first)
    return found.group(0) if found else None


def driver_library_error(name: str) -> str | None:
    """None when the dynamic loader opens the driver library `name`, else its error."""
    try:
        ctypes.CDLL(name)
    except OSError as exc:
        return str(exc)
    return None


def require_nvcodec() -> ModuleType:
    """The `PyNvVideoCodec` module (NVDEC decoding into device memory), or its decoder
    module alone where only NVENC's library is missing (see the module doc)."""
    purpose = "Hardware video decoding (NVDEC)"
    try:
        module = importlib.import_module("PyNvVideoCodec")
    except ModuleNotFoundError as exc:
        if exc.name != "PyNvVideoCodec":  # one of its own parts is missing
            raise _cannot_load(exc) from exc
        raise OptionalDependencyError.for_extra(NVCODEC_REQUIREMENT, "cuda", purpose) from exc
    except (ImportError, RuntimeError, OSError) as exc:
        if missing_library(exc) != NVENC_LIBRARY:
            raise _cannot_load(exc) from exc
        return _decoder_module(exc)
    _check_version(getattr(module, "__version__", None))
    return module


def nvcodec_load_note(module: ModuleType) -> str:
    """How `require_nvcodec` loaded `module`: "" for the whole package, else a sentence."""
    return _NOTES.get(id(module), "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _cannot_load(error: BaseException) -> OptionalDependencyError:
    library = missing_library(error)
    if library is not None:
        what = DRIVER_LIBRARIES.get(library, "a library it links")
        return OptionalDependencyError(
            f"Hardware video decoding (NVDEC) needs the NVIDIA driver's {library} ({what}), "
            f"which PyNvVideoCodec could not load ({_first_line(error)}). Install the driver "
            "with its video libraries, or decode on the CPU (--device cpu)."
        )
    return OptionalDependencyError(
        f"Hardware video decoding (NVDEC): PyNvVideoCodec is installed but could not be "
        f"imported ({type(error).__name__}: {_first_line(error)}). It needs the NVIDIA driver "
        "and a build for this Python; or decode on the CPU (--device cpu)."
    )


def _check_version(version: str | None) -> None:
    parts = tuple(int(p) for p in re.findall(r"\d+", version or "")[:2])
    if len(parts) == 2 and parts < NVCODEC_MINIMUM:
        raise OptionalDependencyError(
            f"Hardware video decoding (NVDEC) needs {NVCODEC_REQUIREMENT} (it reports the "
            f"stream time base); PyNvVideoCodec {version} is installed. Upgrade it with: "
            f"pip install '{NVCODEC_REQUIREMENT}'"
        )


def _decoder_module(import_error: BaseException) -> ModuleType:
    """PyNvVideoCodec's decoder extension module, loaded without the package's
    `__init__` (which failed on NVENC's library: `import_error`)."""
    cause = (
        f"PyNvVideoCodec's import needs {NVENC_LIBRARY} (NVENC's driver library), which is missing"
    )
    nvdec_error = driver_library_error(NVDEC_LIBRARY)
    if nvdec_error is not None:
        raise OptionalDependencyError(
            f"Hardware video decoding (NVDEC) needs the NVIDIA driver's {NVDEC_LIBRARY} "
            f"({DRIVER_LIBRARIES[NVDEC_LIBRARY]}), which is missing ({nvdec_error}); "
            f"{cause} too. Install the driver with its video libraries, or decode on the CPU "
            "(--device cpu)."
        ) from import_error
    spec = importlib.util.find_spec("PyNvVideoCodec")  # finds the folder, runs nothing
    folders = tuple(spec.submodule_search_locations or ()) if spec else ()
    module, tried = _load_decoder(folders, tuple(EXTENSION_SUFFIXES))
    if module is None:
        found = "; ".join(tried) or f"no {' or '.join(NVCODEC_NATIVE_MODULES)} module found"
        raise OptionalDependencyError(
            f"Hardware video decoding (NVDEC): {cause}, and its decoder module did not load "
            f"on its own ({found}). Install the NVIDIA driver with its video libraries, or "
            "decode on the CPU (--device cpu)."
        ) from import_error
    _check_version(module.__version__)
    _NOTES[id(module)] = (
        f"NVDEC through PyNvVideoCodec's decoder module {Path(module.__file__ or '').name} "
        f"alone ({cause}; NVENC is unavailable)"
    )
    return module


@lru_cache(maxsize=8)
def _load_decoder(
    folders: tuple[str, ...], suffixes: tuple[str, ...]
) -> tuple[ModuleType | None, tuple[str, ...]]:
    """The first decoder module of `NVCODEC_NATIVE_MODULES` that loads from `folders`
    (loaded once per folder: an extension module is initialised once per process), and
    why the others did not."""
    tried: list[str] = []
    for stem in NVCODEC_NATIVE_MODULES:
        for folder in folders:
            for suffix in suffixes:
                path = Path(folder) / f"{stem}{suffix}"
                if not path.exists():
                    continue
                try:
                    module = _load_file(path)
                except (ImportError, OSError, RuntimeError) as exc:
                    tried.append(f"{path.name}: {_first_line(exc)}")
                    continue
                module.__version__ = _installed_version()  # type: ignore[attr-defined]
                return module, tuple(tried)
    return None, tuple(tried)


def _load_file(path: Path) -> ModuleType:
    # The package's own loader uses this name: the extension's init function is
    # PyInit__PyNvVideoCodec whichever file it is.
    spec = importlib.util.spec_from_file_location("_PyNvVideoCodec", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _installed_version() -> str:
    try:
        return metadata.version("PyNvVideoCodec")
    except metadata.PackageNotFoundError:
        return "?"
