"""The generator's ONNX file for ONNX Runtime, exported once per weights.

It is kept in the model folder under `onnx/`, named by the weights' fingerprint, so a
changed checkpoint exports afresh and later runs start at once. The weights sit beside the
graph in a `.weights` file (ONNX external data): ONNX Runtime then reads them straight
into its own tensors, where a file holding them inline is parsed whole first and lives
beside the session's copy while the CPU optimisations run (the 2-block generator's
session peaked 1.32 GB above the process's size with inline weights, 0.80 GB with them
apart, for 0.74 GB of weights).

The model store refuses ONNX files with external data: an imported or downloaded file's
references could point anywhere on the machine. This cache is the engine's own output,
and it is held to what it wrote: a record beside the graph (`.record.json`) keeps the
SHA-256, size and modification time of the graph and of its weights file as exported,
and a cached graph is used only while every external reference in it names its own
`.weights` file, the graph hashes as recorded and the weights file still has its recorded
size and time (else hashes as recorded: the store's own rule for its files). Anything
else (a missing or changed weights file or graph, no record, as from an earlier version)
is logged and exported afresh.

The export runs in a child process. Tracing and simplifying a 184 M-parameter generator
holds the module, the traced graph and its serialised copies at once (about 4 GB for
`G_unet_2blocks`); in the running process that peak would add to everything the run
already holds, and the freed memory would stay in the process's heap for the rest of
the run. A child gives all of it back to the system when it exits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from ghost_engine import errors
from ghost_engine.errors import ExportError, GhostEngineError
from ghost_engine.store.hashing import sha256_file
from ghost_engine.store.records import FileStamp

log = logging.getLogger(__name__)


def weights_fingerprint(checkpoint: Path | None) -> str:
    """'random' for fill-rule weights, else a hash of the file's name, size and mtime.

    Cheap on purpose (a 740 MB checkpoint is not re-hashed on every run); the model store
    has already verified the file's content.
    """
    if checkpoint is None:
        return "random"
    stat = Path(checkpoint).stat()
    key = f"{Path(checkpoint).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def weights_file(onnx_file: Path) -> Path:
    """Where the cached graph `onnx_file` keeps its weights."""
    return onnx_file.with_name(onnx_file.name.removesuffix(".onnx") + ".weights")


def record_file(onnx_file: Path) -> Path:
    """Where the cached graph `onnx_file` keeps the record of what was exported."""
    return onnx_file.with_name(onnx_file.name.removesuffix(".onnx") + ".record.json")


def cached_onnx(name: str, checkpoint: Path | None, cache_dir: Path) -> Path:
    """The fp32 ONNX of network `name` with these weights, exported on first use (in a
    child process; its errors are raised here as the engine error it raised), and again
    when the cached copy is not what was exported (`cache_problem`)."""
    target = cache_dir / f"{name}.{weights_fingerprint(checkpoint)}.fp32.onnx"
    if target.is_file():
        problem = cache_problem(target)
        if problem is None:
            return target
        log.warning("the cached %s is not as exported (%s): exporting it afresh", target, problem)
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.warning("exporting %s to ONNX Runtime once (%s); later runs reuse it", name, target)
    target.unlink(missing_ok=True)  # the graph goes in last: its presence means complete
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".export-") as tmp:
        staged = Path(tmp) / target.name
        export_in_child(name, checkpoint, staged)
        record = {"graph": _stamp(staged), "weights": _stamp(weights_file(staged))}
        os.replace(weights_file(staged), weights_file(target))
        record_file(target).write_text(json.dumps(record, indent=2) + "\n", "utf-8")
        os.replace(staged, target)
    return target


def cache_problem(onnx_file: Path) -> str | None:
    """Why the cached graph `onnx_file` is not what the engine exported there, or None.

    Its graph must hash as recorded and keep its data only in its own weights file, and
    that file must still have its recorded stamp or hash (`FileStamp`).
    """
    weights = weights_file(onnx_file)
    if not weights.is_file():
        return f"its weights file {weights.name} is missing"
    try:
        raw = json.loads(record_file(onnx_file).read_text("utf-8"))
        graph_stamp = FileStamp.from_json(raw["graph"])
        weights_stamp = FileStamp.from_json(raw["weights"])
    except (OSError, ValueError, KeyError, TypeError):
        return f"its record {record_file(onnx_file).name} is missing or unreadable"
    if graph_stamp is None or weights_stamp is None:
        return f"its record {record_file(onnx_file).name} is incomplete"
    if sha256_file(onnx_file) != graph_stamp.sha256:
        return "the graph changed since it was exported"
    foreign = _foreign_reference(onnx_file, weights.name)
    if foreign is not None:
        return foreign
    if not weights_stamp.matches(weights) and sha256_file(weights) != weights_stamp.sha256:
        return f"its weights file {weights.name} changed since it was exported"
    return None


def _stamp(path: Path) -> dict:
    return FileStamp.of(path, sha256_file(path)).to_json()


def _foreign_reference(onnx_file: Path, own: str) -> str | None:
    """The first tensor of `onnx_file` whose data lives anywhere but the file `own`
    beside it, described; None when there is none."""
    import onnx

    from ghost_engine.store.onnx_tensors import external_reference, stored_tensors

    try:
        model = onnx.load(str(onnx_file), load_external_data=False)
    except Exception as exc:  # onnx raises protobuf DecodeError and others; all mean "bad"
        return f"the graph is not readable: {exc}"
    for tensor in stored_tensors(model):
        location = external_reference(tensor)
        if location is not None and location != own:
            return f"tensor {tensor.name!r} points to {location!r}, not to {own!r}"
    return None


def export_apart(name: str, checkpoint: Path | None, dest: Path) -> None:
    """Export `name` to fp32 ONNX at `dest`, its weights in `weights_file(dest)`.

    Tensors under 1 kB stay in the graph: shape inference reads small constants (a
    Reshape's target shape) and cannot follow them into external data.
    """
    import onnx

    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".inline-") as tmp:
        model = onnx.load(str(export_fp32(name, checkpoint, Path(tmp))))
    onnx.save(
        model,
        str(dest),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=weights_file(dest).name,
        size_threshold=1024,
    )
    # onnx creates the weights file private to its owner; give it the graph's mode
    os.chmod(weights_file(dest), stat.S_IMODE(dest.stat().st_mode))


def export_fp32(name: str, checkpoint: Path | None, out_dir: Path) -> Path:
    """Export `name` to fp32 ONNX in `out_dir` in this process; the file written.

    No parity check: the file is the exporter's own output, and the exporter's tests
    check it against PyTorch.
    """
    from ghost_engine.export.exporter import ExportRequest, export_model

    result = export_model(
        ExportRequest(
            model=name,
            out_dir=out_dir,
            checkpoint=checkpoint,
            random_weights=checkpoint is None,
            check=False,
        )
    )
    return result.onnx_files["fp32"]


def export_in_child(name: str, checkpoint: Path | None, dest: Path) -> None:
    """`export_apart` in a fresh Python process; raises its error here."""
    report = dest.with_name("export-result.json")
    argv = [sys.executable, "-m", __name__, name, str(dest), str(report)]
    if checkpoint is not None:
        argv.append(str(checkpoint))
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if report.is_file():
        outcome = json.loads(report.read_text())
        if outcome.get("done"):
            return
        raise _rebuild_error(outcome)
    if proc.returncode < 0:
        why = f"was killed by {signal.Signals(-proc.returncode).name}"
        if proc.returncode == -signal.SIGKILL:
            why += " (out of memory? it needs about 4 GB for the 2-block generator)"
    else:
        why = f"exited with status {proc.returncode}"
    last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    raise ExportError(f"exporting {name} to ONNX failed: the export process {why}: {last}")


def _rebuild_error(outcome: dict) -> GhostEngineError:
    """The child's engine error as the same class, with its message and fields."""
    message = outcome.get("message", "")
    cls = getattr(errors, outcome.get("error", ""), None)
    if isinstance(cls, type) and issubclass(cls, GhostEngineError):
        try:
            return cls(message, **outcome.get("fields", {}))
        except TypeError:  # an error class with its own constructor
            pass
    return ExportError(message)


def _main(argv: list[str]) -> int:
    """Child side: `NAME DEST REPORT [CHECKPOINT]`; writes the outcome to REPORT."""
    name, dest, report = argv[0], Path(argv[1]), Path(argv[2])
    checkpoint = Path(argv[3]) if len(argv) > 3 else None
    try:
        export_apart(name, checkpoint, dest)
        outcome: dict = {"done": True}
    except GhostEngineError as exc:
        fields = {k: v for k, v in exc.fields().items() if k != "allowed"}
        if exc.allowed is not None:
            fields["allowed"] = list(exc.allowed)
        outcome = {"error": type(exc).__name__, "message": exc.message, "fields": fields}
    report.write_text(json.dumps(outcome, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
