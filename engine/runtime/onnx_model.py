"""A small ONNX Runtime wrapper the pipeline and benchmarks run exported models with."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ghost_engine.errors import InputFileNotFoundError, UserInputError


class OnnxModel:
    """One inference session: `model(**inputs) -> {output name: array}`.

    `providers` defaults to ONNX Runtime's CPU provider; pass e.g.
    `["CUDAExecutionProvider", "CPUExecutionProvider"]` for a GPU. `run_binding` runs a
    prepared `io_binding()` so device-resident inputs and outputs need no host copy.
    Sessions are thread-safe for `run`; an IO binding belongs to one thread.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        providers: Sequence[str] | None = None,
        threads: int = 0,
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputFileNotFoundError(f"ONNX model not found: {self.path}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.path), opts, providers=list(providers or ["CPUExecutionProvider"])
        )
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def metadata(self) -> dict[str, str]:
        """The file's metadata properties (see `ghost_engine.export.metadata`)."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in inputs]
        extra = [n for n in inputs if n not in self.input_names]
        if missing or extra:
            raise UserInputError(
                f"{self.path.name} takes inputs {self.input_names}; "
                f"missing {missing}, unexpected {extra}"
            )
        feeds = {n: np.ascontiguousarray(inputs[n], dtype=np.float32) for n in self.input_names}
        results = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, results, strict=True))

    def io_binding(self) -> ort.IOBinding:
        """A fresh IO binding (bind device buffers with `bind_input`/`bind_output`)."""
        return self.session.io_binding()

    def run_binding(self, binding: ort.IOBinding) -> None:
        """Run with a prepared binding; outputs land where the binding put them."""
        self.session.run_with_iobinding(binding)
