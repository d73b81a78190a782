"""Safe checkpoint loading: official `.pth` files in, never any pickled code run.

`.pth` files are read with PyTorch's restricted unpickler (`weights_only=True`), which
only rebuilds tensors and plain containers; anything else (a `__reduce__` that calls
`os.system`, say) is refused before it runs. After the first successful strict load the
weights are written beside the file as `.safetensors`, which later loads read directly.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import stat
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TypeGuard

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ghost_engine.errors import CheckpointError, InputFileNotFoundError, UserInputError

log = logging.getLogger(__name__)

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net", "G", "generator")
_MAX_KEYS_SHOWN = 5
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format is a zip archive
_PICKLE_PROTOCOLS = range(2, 6)  # the legacy format is a pickle stream (protocol 2..5)
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def special_file_kind(mode: int) -> str | None:
    """'a FIFO (named pipe)', 'a socket'... for a `st_mode` that is neither a regular file
    nor a folder, else None. Such a path is refused without being opened: reading a FIFO
    waits for a writer and a device never ends."""
    for test, kind in _SPECIAL_KINDS:
        if test(mode):
            return kind
    return None if stat.S_ISREG(mode) or stat.S_ISDIR(mode) else "not a regular file"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks (checkpoints are hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _is_state_dict(obj: object) -> TypeGuard[Mapping[str, torch.Tensor]]:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) for k in obj)
        and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def unwrap_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    """The bare state dict inside the layouts official files use.

    Accepts a bare dict, one wrapped under `state_dict`/`model`/..., and strips the
    `module.` prefix DataParallel adds.
    """
    if isinstance(obj, Mapping) and not _is_state_dict(obj):
        for key in _WRAPPER_KEYS:
            if key in obj and _is_state_dict(obj[key]):
                obj = obj[key]
                break
    if not _is_state_dict(obj):
        kind = type(obj).__name__
        keys = list(obj)[:_MAX_KEYS_SHOWN] if isinstance(obj, Mapping) else []
        raise CheckpointError(
            f"{path}: expected a state dict of tensors, found a {kind}"
            + (f" with keys {keys}" if keys else "")
            + "; is this a model checkpoint?"
        )
    return {re.sub(r"^module\.", "", k): v for k, v in obj.items()}


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a `.pth`/`.pt`/`.safetensors` file into a state dict without running code."""
    path = Path(path)
    first = _first_bytes(path)
    if path.suffix == ".safetensors":
        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError) as exc:
            raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    if not first.startswith(_ZIP_MAGIC) and not _is_pickle(first):
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint (it starts with bytes {first[:8].hex(' ')}, "
            "neither a torch zip archive nor a pickle stream); get the checkpoint from its "
            "published source"
        )
    try:
        with warnings.catch_warnings():
            # A pickle of another protocol is refused below with one line; torch's
            # multi-line warning about it would only bury that line.
            warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _blocked_global(str(exc))
        if detail is None:
            raise CheckpointError(
                f"{path}: not a PyTorch checkpoint: its pickle stream holds instructions no "
                f"saved weights use ({_safe_detail(str(exc))}); nothing from it was executed. "
                "Get the checkpoint from its published source"
            ) from None
        raise CheckpointError(
            f"{path}: refused to load: the file asks to run code while unpickling, which a "
            f"weights file never needs ({detail}). Nothing from it was executed. Get the "
            "checkpoint from a trusted source."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({_safe_detail(str(exc))}); "
            "the file may be truncated or corrupt: download it again"
        ) from None
    return unwrap_state_dict(obj, path)


def _first_bytes(path: Path) -> bytes:
    """The file's first bytes, after refusing what is not a non-empty regular file."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputFileNotFoundError(f"checkpoint not found: {path}", path=path) from None
    if stat.S_ISDIR(mode):
        raise UserInputError(
            f"{path} is a folder, not a checkpoint file; give the .pth file itself", path=path
        )
    kind = special_file_kind(mode)
    if kind is not None:
        raise UserInputError(
            f"{path} is {kind}, not a checkpoint file; nothing was read from it", path=path
        )
    with open(path, "rb") as fh:
        first = fh.read(16)
    if not first:
        raise CheckpointError(
            f"{path} is empty (0 bytes), not a checkpoint; the download or copy did not "
            "finish: get the file again",
            path=path,
        )
    return first


def _is_pickle(first: bytes) -> bool:
    return len(first) >= 2 and first[0] == 0x80 and first[1] in _PICKLE_PROTOCOLS


def _blocked_global(message: str) -> str | None:
    """The line of torch's refusal that names a blocked global, if it names one."""
    for line in message.splitlines():
        if "GLOBAL" in line or "global" in line:
            return line.strip()
    return None


# Lines of torch's messages that are advice or boilerplate, not a description of the file.
_ADVICE = ("weights_only", "weights only", "trusted source", "file an issue", "documentation")


def _safe_detail(message: str) -> str:
    """The first informative line of a torch error, without its advice.

    torch's refusals suggest re-running with the unsafe loader; passing that on would
    tell users to run code from a file we just refused, so such lines are dropped.
    """
    for line in message.splitlines():
        text = line.strip()
        lowered = text.lower()
        if text and not text.endswith(":") and not any(s in lowered for s in _ADVICE):
            return text.split(". ")[0].rstrip(".")[:200]
    return "unreadable"


def identify(shapes: Mapping[str, tuple[int, ...]]) -> str:
    """A best guess of which network a state dict belongs to, for error messages."""
    keys = set(shapes)
    if any(k.startswith("generator.AADBlk") for k in keys):
        units = {
            int(m.group(1))
            for k in keys
            if (m := re.match(r"generator\.AADBlk1\.add_blocks\.(\d+)\.conv1", k))
        }
        deconv2 = tuple(shapes.get("encoder.deconv2.deconv.weight", ()))
        backbone = "unet" if deconv2[:1] == (2048,) else "linknet"
        return f"an AEI-Net generator ({backbone}, {len(units)} AAD layers per block)"
    if "layer0.0.weight" in keys and "layer1.0.weight" in keys:
        return "a multiscale discriminator"
    if "fc.weight" in keys and "features.running_mean" in keys:
        depth = len({k.split(".")[1] for k in keys if k.startswith("layer3.")})
        known = {2: "iresnet18", 6: "iresnet34", 14: "iresnet50", 30: "iresnet100"}
        return f"an ArcFace {known.get(depth, f'iresnet ({depth} blocks in layer3)')}"
    if any(k.startswith("lip_encoder.") for k in keys):
        return "a LIP-SPADE super-resolution generator"
    if any(k.startswith("m0.coordconv") for k in keys):
        return "a FAN landmark network"
    return "an unknown network"


def check_compatible(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path, name: str
) -> None:
    """Raise a `CheckpointError` naming the first mismatches unless keys and shapes agree."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    wrong = [
        f"{k} {got[k]} (expected {expected[k]})"
        for k in expected
        if k in got and got[k] != expected[k]
    ]
    if not (missing or unexpected or wrong):
        return
    parts = []
    for label, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("wrong shapes", wrong),
    ):
        if items:
            more = (
                f" and {len(items) - _MAX_KEYS_SHOWN} more" if len(items) > _MAX_KEYS_SHOWN else ""
            )
            parts.append(f"{label}: {', '.join(items[:_MAX_KEYS_SHOWN])}{more}")
    raise CheckpointError(
        f"{path} does not fit network {name!r}: {'; '.join(parts)}. "
        f"The file looks like {identify(got)}."
    )


def _converted_path(path: Path) -> Path:
    return path.with_suffix(".safetensors")


def _fresh_conversion(path: Path) -> Path | None:
    """The `.safetensors` beside `path` if it was made from this exact file."""
    converted = _converted_path(path)
    if path.suffix == ".safetensors" or not converted.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(converted), framework="pt") as fh:
            meta = fh.metadata() or {}
    except (SafetensorError, OSError):
        return None
    stat = path.stat()
    if meta.get("source_size") == str(stat.st_size) and meta.get("source_mtime_ns") == str(
        stat.st_mtime_ns
    ):
        return converted
    return None


def write_safetensors(
    state: Mapping[str, torch.Tensor], out: Path, metadata: dict[str, str]
) -> Path:
    """Write atomically (temporary file in the same folder, then rename)."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def load_into(
    module: torch.nn.Module, path: str | Path, *, network_name: str = "", convert: bool = True
) -> Path:
    """Load `path` into `module` strictly; return the file actually read.

    A `.pth` with an up-to-date `.safetensors` beside it is read from the latter; otherwise
    it is read safely and, if `convert`, converted for next time (best effort: a read-only
    folder only skips the conversion).
    """
    path = Path(path)
    name = network_name or type(module).__name__
    source = _fresh_conversion(path) or path
    state = read_state_dict(source)
    check_compatible(module, state, path, name)
    module.load_state_dict(state, strict=True)
    if convert and source.suffix != ".safetensors":
        stat = path.stat()
        meta = {
            "network": name,
            "source_file": path.name,
            "source_size": str(stat.st_size),
            "source_mtime_ns": str(stat.st_mtime_ns),
        }
        try:
            write_safetensors(state, _converted_path(path), meta)
        except OSError as exc:
            # A read-only models folder still loads, only without the faster path next time.
            log.warning("could not write %s (%s); loading stays on the .pth", exc.filename, exc)
    return source
