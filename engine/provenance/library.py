"""The C2PA and X.509 libraries, imported only when an output is signed or verified, so a
command that never signs (`models`, `bench`) starts without them."""

from __future__ import annotations

from types import ModuleType

from ghost_engine.errors import OptionalDependencyError

_INSTALL = "pip install c2pa-python==0.38.1"


def c2pa_module() -> ModuleType:
    """The `c2pa` package, or an error that says how to install it (or to pass
    --no-c2pa and keep only the plain label)."""
    try:
        import c2pa
    except ImportError as exc:
        raise OptionalDependencyError(
            "C2PA content credentials need the Python package 'c2pa-python', which is not "
            f"installed; install it with: {_INSTALL} (or run with --no-c2pa for the plain "
            "label only)"
        ) from exc
    return c2pa


def crypto_x509() -> ModuleType:
    """`cryptography.x509` (a dependency of c2pa-python), with the same advice if missing."""
    try:
        from cryptography import x509
    except ImportError as exc:
        raise OptionalDependencyError(
            "signing identities need the Python package 'cryptography', which is not "
            f"installed; install it with: {_INSTALL}"
        ) from exc
    return x509
