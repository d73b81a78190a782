"""The benchmark chart: each stage's own throughput as bars, the end-to-end rate as a
line across them, and the generator's faces/s per batch size and runtime beside it."""

from __future__ import annotations

from pathlib import Path

from ghost_engine.errors import OptionalDependencyError, OutputError


def _pyplot():
    try:
        import matplotlib
    except ImportError as exc:
        raise OptionalDependencyError.for_extra("matplotlib", "bench", "The bench chart") from exc
    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    return plt


def _stage_panel(ax, data: dict) -> None:
    stages = data["stages"]
    names = [s["name"] for s in stages][::-1]
    fps = [s["frames_per_s"] for s in stages][::-1]
    slowest = data["efficiency"]["slowest_stage"]
    colors = ["#d62728" if n == slowest else "#1f77b4" for n in names]
    ax.barh(names, fps, color=colors)
    ax.set_xscale("log")
    for y, v in enumerate(fps):
        ax.text(v, y, f" {v:.3g}", va="center", fontsize=8)
    e2e = data["end_to_end"]["frames_per_s"]
    eff = data["efficiency"]["value"]
    ax.axvline(
        e2e,
        color="black",
        linestyle="--",
        linewidth=1.5,
        label=f"end to end {e2e:.3g} frames/s (efficiency {eff:.2f})",
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("frames per second (log scale), each stage alone")
    ax.set_title("Stage throughput (red: slowest)")
    ax.set_xlim(right=max(fps) * 8)


def _generator_panel(ax, data: dict) -> None:
    rows = data["generator"]
    runtimes = list(dict.fromkeys(r["runtime"] for r in rows))
    batches = sorted({r["batch_size"] for r in rows})
    width = 0.8 / max(1, len(runtimes))
    for i, runtime in enumerate(runtimes):
        xs, ys, labels = [], [], []
        for j, batch in enumerate(batches):
            match = [r for r in rows if r["runtime"] == runtime and r["batch_size"] == batch]
            row = match[0] if match else None
            if row is not None:
                xs.append(j + i * width)
                ys.append(row["items_per_s"])
                labels.append(f"{row['achieved_tflop_per_s'] * 1000:.0f}")
        bars = ax.bar(xs, ys, width=width, label=runtime)
        for bar, label in zip(bars, labels, strict=True):
            ax.text(
                bar.get_x() + bar.get_width() / 2,
                bar.get_height(),
                f"{label}\nGFLOP/s",
                ha="center",
                va="bottom",
                fontsize=7,
            )
    ax.set_xticks([j + width * (len(runtimes) - 1) / 2 for j in range(len(batches))])
    ax.set_xticklabels([str(b) for b in batches])
    ax.set_xlabel("batch size")
    ax.set_ylabel("faces per second")
    ax.set_title("Generator alone")
    ax.margins(y=0.25)
    ax.legend(fontsize=8)


def write_chart(data: dict, path: Path) -> Path:
    """Write the PNG chart of a report dict (see `report.check_report`)."""
    plt = _pyplot()
    has_sweep = bool(data["generator"])
    fig, axes = plt.subplots(
        1,
        2 if has_sweep else 1,
        figsize=(13 if has_sweep else 8, 5),
        gridspec_kw={"width_ratios": [3, 2]} if has_sweep else None,
        squeeze=False,
    )
    _stage_panel(axes[0][0], data)
    if has_sweep:
        _generator_panel(axes[0][1], data)
    m = data["machine"]
    weights = "random weights" if data["random_weights"] else "real weights"
    fig.suptitle(
        f"ghost-engine bench, {data['settings'].get('device', '?')}: {m['cpu']}, "
        f"{m['logical_cores']} cores; {weights}; {data['date'][:10]}, {data['commit'][:10]}",
        fontsize=10,
    )
    fig.tight_layout()
    path = Path(path)
    try:
        fig.savefig(path, dpi=110)
    except OSError as exc:
        raise OutputError(f"cannot write the chart {path}: {exc.strerror}") from exc
    finally:
        plt.close(fig)
    return path
