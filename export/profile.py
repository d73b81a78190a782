"""Batch ranges: `MIN:OPT:MAX` as the CLI takes it and TensorRT's profiles need it."""

from __future__ import annotations

from dataclasses import dataclass

from ghost_engine.errors import UserInputError


@dataclass(frozen=True)
class BatchProfile:
    """The batch sizes an engine accepts (`min`..`max`) and is tuned for (`opt`)."""

    min: int = 1
    opt: int = 8
    max: int = 32

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise UserInputError(
                f"batch range {self} is invalid: need 1 <= MIN <= OPT <= MAX, e.g. 1:8:32",
                option="--batch",
                value=str(self),
            )

    @classmethod
    def parse(cls, text: str) -> BatchProfile:
        """`"1:8:32"`, or `"4"` for a fixed batch of 4."""
        parts = text.strip().split(":")
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise UserInputError(
                f"batch range {text!r} is not MIN:OPT:MAX integers (e.g. 1:8:32) or one integer",
                option="--batch",
                value=text,
            ) from None
        if len(values) == 1:
            values *= 3
        if len(values) != 3:
            raise UserInputError(
                f"batch range {text!r} needs three values MIN:OPT:MAX, e.g. 1:8:32",
                option="--batch",
                value=text,
            )
        return cls(*values)

    @property
    def fixed(self) -> bool:
        return self.min == self.max

    def check_batches(self) -> tuple[int, ...]:
        """Batch sizes a parity check runs at: the smallest and the tuned one (or the
        largest when those agree), so a dynamic batch axis is exercised twice."""
        second = self.opt if self.opt != self.min else self.max
        return tuple(sorted({self.min, second}))

    def __str__(self) -> str:
        return f"{self.min}:{self.opt}:{self.max}"
