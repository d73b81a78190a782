"""The benchmark's results: one JSON document, checked against its schema, and the
table printed on the terminal."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ghost_engine.errors import OutputError
from ghost_engine.measure.bench_config import STAGE_NAMES

SCHEMA = "ghost-engine-bench/1"

# key -> type every report has at the top level
_TOP_LEVEL = {
    "schema": str,
    "date": str,
    "commit": str,
    "machine": dict,
    "settings": dict,
    "random_weights": bool,
    "notes": list,
    "stages": list,
    "generator": list,
    "end_to_end": dict,
    "efficiency": dict,
    "memory": dict,
}
_STAGE_KEYS = {"name": str, "unit": str, "per_s": float, "frames_per_s": float}
_GENERATOR_KEYS = {
    "runtime": str,
    "batch_size": int,
    "items_per_s": float,
    "achieved_tflop_per_s": float,
}
_MACHINE_KEYS = ("cpu", "logical_cores", "ram_gib", "os", "python", "torch", "onnxruntime")


@dataclass
class BenchReport:
    """Everything one `ghost-engine bench` run found, ready for JSON and the chart."""

    provenance: dict  # date, commit, machine
    settings: dict
    random_weights: bool
    stages: list[dict]
    generator: list[dict]
    end_to_end: dict
    efficiency: dict
    memory: dict
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = {
            "schema": SCHEMA,
            **self.provenance,
            "settings": self.settings,
            "random_weights": self.random_weights,
            "notes": list(self.notes),
            "stages": self.stages,
            "generator": self.generator,
            "end_to_end": self.end_to_end,
            "efficiency": self.efficiency,
            "memory": self.memory,
        }
        check_report(data)
        return data


def _check_keys(where: str, data: dict, keys: dict) -> None:
    for key, kind in keys.items():
        if key not in data:
            raise ValueError(f"{where}: missing key {key!r}")
        value = data[key]
        ok = isinstance(value, (int, float)) if kind is float else isinstance(value, kind)
        if not ok or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{where}: {key!r} must be {kind.__name__}, got {value!r}")


def check_report(data: dict) -> None:
    """Raise ValueError naming the first thing that does not fit the schema."""
    _check_keys("report", data, _TOP_LEVEL)
    if data["schema"] != SCHEMA:
        raise ValueError(f"report: schema is {data['schema']!r}, expected {SCHEMA!r}")
    missing = [k for k in _MACHINE_KEYS if k not in data["machine"]]
    if missing:
        raise ValueError(f"report.machine: missing {', '.join(missing)}")
    for i, stage in enumerate(data["stages"]):
        _check_keys(f"report.stages[{i}]", stage, _STAGE_KEYS)
    names = [s["name"] for s in data["stages"]]
    if names != [n for n in STAGE_NAMES if n in names] or len(set(names)) != len(names):
        raise ValueError(f"report.stages: names {names} are not in pipeline order")
    for i, row in enumerate(data["generator"]):
        _check_keys(f"report.generator[{i}]", row, _GENERATOR_KEYS)
    _check_keys("report.end_to_end", data["end_to_end"], {"frames_per_s": float, "frames": int})
    _check_keys(
        "report.efficiency",
        data["efficiency"],
        {"value": float, "slowest_stage": str, "slowest_fps": float},
    )


def write_json(data: dict, path: Path) -> None:
    """Write atomically (temporary file, then rename) after checking the schema."""
    check_report(data)
    write_json_file(data, path)


def write_json_file(data: dict, path: Path) -> None:
    """Any JSON document, written atomically, or an OutputError."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror}; check the folder") from exc


def _rows_to_text(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        return "  ".join([first, *(c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def format_table(data: dict) -> str:
    """The terminal summary: stages, generator sweep, end to end, efficiency, memory."""
    machine = data["machine"]
    weights = "RANDOM (fill rule, right architecture)" if data["random_weights"] else "real"
    out = [
        f"ghost-engine bench  {data['date']}  commit {data['commit'][:12]}",
        f"machine: {machine['cpu']}, {machine['logical_cores']} cores, "
        f"{machine['ram_gib']} GiB; torch {machine['torch']}, onnxruntime "
        f"{machine['onnxruntime']}",
        f"weights: {weights}",
        "",
    ]
    rows = [
        [
            s["name"],
            s.get("implementation", ""),
            f"{s['per_s']:.2f} {s['unit']}/s",
            f"{s['frames_per_s']:.2f}",
            f"{1000.0 / s['frames_per_s']:.1f}",
        ]
        for s in data["stages"]
    ]
    out += _rows_to_text(["stage", "implementation", "alone", "frames/s", "ms/frame"], rows)
    if data["generator"]:
        out.append("")
        rows = [
            [
                g["runtime"],
                str(g["batch_size"]),
                f"{g['items_per_s']:.3f}",
                f"{g['ms_per_item']:.1f}",
                f"{g['achieved_tflop_per_s'] * 1000:.1f}",
            ]
            for g in data["generator"]
        ]
        out += _rows_to_text(["generator runtime", "batch", "faces/s", "ms/face", "GFLOP/s"], rows)
    e2e, eff = data["end_to_end"], data["efficiency"]
    out += [
        "",
        f"end to end: {e2e['frames_per_s']:.3f} frames/s over {e2e['frames']} frames",
        f"efficiency: {eff['value']:.3f} (end to end / slowest stage alone: "
        f"{eff['slowest_stage']} {eff['slowest_fps']:.3f} frames/s)",
        f"memory: peak RSS {data['memory'].get('peak_rss_mib', 0):.0f} MiB during the pipeline, "
        f"{data['memory'].get('process_peak_rss_mib', 0):.0f} MiB for the whole process",
    ]
    if "peak_gpu_allocated_mib" in data["memory"]:
        out.append(f"GPU memory: peak {data['memory']['peak_gpu_allocated_mib']:.0f} MiB allocated")
    out += [f"note: {n}" for n in data["notes"]]
    return "\n".join(out)
