"""Typed intermediate representation of an int8 TFLite graph.

The importer fills it from a ``.tflite`` flatbuffer; the planner and the code generator read it.
Shapes are NHWC lists of ints; scales are float32 values kept as Python floats (exactly the
float32 the model stores), zero points are ints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DTYPE_SIZES = {"int8": 1, "int16": 2, "int32": 4, "float32": 4, "uint8": 1, "int64": 8}


@dataclass
class Quant:
    """Affine quantization: real = scale * (q - zero_point); per-channel along ``axis``."""

    scales: list[float]
    zero_points: list[int]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1

    @property
    def scale(self) -> float:
        return self.scales[0]

    @property
    def zero_point(self) -> int:
        return self.zero_points[0]


@dataclass
class Tensor:
    """One tensor of the graph. ``data`` is set for constants (weights, biases, shapes)."""

    index: int
    name: str
    shape: list[int]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = None

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * DTYPE_SIZES[self.dtype]


@dataclass
class Op:
    """One operator: builtin name, tensor indices (-1 = optional input absent), options."""

    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    options: dict = field(default_factory=dict)


@dataclass
class Graph:
    """A single-subgraph model: tensors by index, ops in execution order, graph I/O."""

    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    description: str = ""

    def t(self, index: int) -> Tensor:
        return self.tensors[index]
