"""What `ghost-engine bench` measures, frozen and validated on creation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ghost_engine.choices import BENCH_RUNTIMES, check_choice
from ghost_engine.errors import UserInputError
from ghost_engine.runtime.devices import CPU, DEVICES

RUNTIMES = BENCH_RUNTIMES

# Per-frame stages in pipeline order; `unit` says what one item is.
STAGES = (
    ("decode", "frames"),
    ("detect", "frames"),
    ("align", "faces"),
    ("identity", "faces"),
    ("generator", "faces"),
    ("enhance", "faces"),  # only with BenchConfig.enhance (as run --enhance)
    ("landmarks", "faces"),
    ("mask", "faces"),
    ("paste", "faces"),
    ("encode", "frames"),
)
STAGE_NAMES = tuple(name for name, _ in STAGES)


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark run.

    `frames`: how many of the video's first frames every stage and the end-to-end run
    use; `pipeline_batch`: frames per pipeline batch, also the generator's batch in the
    per-stage table (as `ghost-engine run --batch-size`); `batch_sizes` x `runtimes`:
    the generator sweep; `warmup` calls are excluded and the median of `repeats` timed
    calls is reported; `e2e_repeats` end-to-end runs follow one untimed warm-up run.
    """

    video: Path
    device: str = CPU
    runtimes: tuple[str, ...] = ("torch",)
    batch_sizes: tuple[int, ...] = (1, 8, 32)
    frames: int = 24
    pipeline_batch: int = 8
    warmup: int = 1
    repeats: int = 3
    e2e_repeats: int = 1
    generator_blocks: int = 2
    source: Path | None = None
    models_dir: Path | None = None
    # The generator runtime of the pipeline itself (stage table and end to end): "auto"
    # is what `ghost-engine run` uses, the faster measured one for the device.
    pipeline_runtime: str = "auto"
    # Face super-resolution on every swap, timed as its own stage and in the pipeline.
    enhance: bool = False

    def __post_init__(self) -> None:
        message = f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}"
        check_choice("--device", self.device, DEVICES, message)
        bad = [r for r in self.runtimes if r not in RUNTIMES]
        if bad or not self.runtimes:
            raise UserInputError(
                f"--runtime must be a comma list of {', '.join(RUNTIMES)}, got "
                f"{','.join(self.runtimes) or 'nothing'}"
            )
        if not self.batch_sizes or any(b < 1 for b in self.batch_sizes):
            raise UserInputError(
                f"--batch-sizes must be positive integers, got {list(self.batch_sizes)}"
            )
        for name, value, low in (
            ("--frames", self.frames, 1),
            ("--pipeline-batch", self.pipeline_batch, 1),
            ("--warmup", self.warmup, 0),
            ("--repeats", self.repeats, 1),
            ("--e2e-repeats", self.e2e_repeats, 1),
        ):
            if value < low:
                raise UserInputError(f"{name} must be >= {low}, got {value}")
        if self.generator_blocks not in (1, 2, 3):
            raise UserInputError(f"generator blocks must be 1, 2 or 3, got {self.generator_blocks}")


def parse_int_list(text: str, what: str) -> tuple[int, ...]:
    """`"1,8,32"` -> (1, 8, 32), or a UserInputError naming the option."""
    try:
        values = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise UserInputError(f"{what} must be integers separated by commas, got {text!r}") from exc
    if not values:
        raise UserInputError(f"{what} is empty; give e.g. 1,8,32")
    return values


def parse_name_list(text: str) -> tuple[str, ...]:
    """`"torch,onnxruntime"` -> ("torch", "onnxruntime"), duplicates dropped."""
    return tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
