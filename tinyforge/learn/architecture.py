"""Network-architecture parameters shared by the classifier and regression blocks.

Kept free of TensorFlow so parameters are checked (and bad ones rejected) before the
seconds-long TensorFlow import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tinyforge.dsp.params import ParamSpec
from tinyforge.errors import InvalidArgument

MAX_LAYERS = 8
MAX_UNITS = 4096

ARCH_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("architecture", "Architecture", "select", "auto",
              "auto: dense for flat features, 1-D conv for spectrograms, 2-D conv for images",
              valid=("auto", "dense", "conv1d", "conv2d")),
    ParamSpec("dense_layers", "Dense layers", "string", "auto",
              "Neurons per hidden dense layer, comma separated (e.g. '20,10'); 'auto' = 20,10 "
              "for the dense architecture and none after convolutions; '' = none"),
    ParamSpec("conv_filters", "Convolution filters", "string", "auto",
              "Filters per conv block, comma separated; 'auto' = 8,16 for spectrograms and "
              "32,16 for images"),
    ParamSpec("kernel_size", "Kernel size", "int", 3, "Convolution kernel size",
              minimum=1, maximum=15),
    ParamSpec("dropout", "Dropout rate", "float", 0.25, "Dropout after each conv block",
              minimum=0.0, maximum=0.9),
    ParamSpec("normalize", "Standardize features", "boolean", True,
              "Dense architecture: train on standardized features; the scaling is folded into "
              "the first layer, so the model still reads raw features"),
)  # fmt: skip


@dataclass(frozen=True)
class Architecture:
    """Resolved architecture: kind of network and its layer sizes."""

    arch: str
    dense_layers: tuple[int, ...]
    conv_filters: tuple[int, ...]
    kernel_size: int
    dropout: float

    def to_json(self) -> dict[str, Any]:
        return {"arch": self.arch, "dense_layers": list(self.dense_layers),
                "conv_filters": list(self.conv_filters), "kernel_size": self.kernel_size,
                "dropout": self.dropout}


def parse_int_list(text: str, field: str) -> tuple[int, ...]:
    """``"20, 10"`` → ``(20, 10)``; InvalidArgument for non-integers, sizes out of range."""
    text = text.strip()
    if not text:
        return ()
    out = []
    for part in text.split(","):
        try:
            v = int(part.strip())
        except ValueError:
            raise InvalidArgument(
                f"parameter {field!r} = {text!r} is invalid: expected comma-separated integers",
                field=field,
            ) from None
        if not 1 <= v <= MAX_UNITS:
            raise InvalidArgument(f"parameter {field!r}: layer size {v} is outside "
                                  f"1..{MAX_UNITS}", field=field)
        out.append(v)
    if len(out) > MAX_LAYERS:
        raise InvalidArgument(f"parameter {field!r}: at most {MAX_LAYERS} layers, got "
                              f"{len(out)}", field=field)
    return tuple(out)


def resolve(p: dict[str, Any], kind: str) -> Architecture:
    """The architecture for validated params ``p`` and a feature kind."""
    arch = p["architecture"]
    if arch == "auto":
        arch = {"flat": "dense", "spectrogram": "conv1d", "image": "conv2d"}[kind]
    if arch == "conv2d" and kind == "flat":
        raise InvalidArgument(
            "architecture 'conv2d' needs spectrogram or image features, got flat features; "
            "use 'dense' or 'conv1d'",
            field="architecture",
        )
    if p["dense_layers"].strip() == "auto":
        dense = (20, 10) if arch == "dense" else ()
    else:
        dense = parse_int_list(p["dense_layers"], "dense_layers")
    if arch == "dense":
        conv: tuple[int, ...] = ()
    elif p["conv_filters"].strip() == "auto":
        conv = (32, 16) if kind == "image" else (8, 16)
    else:
        conv = parse_int_list(p["conv_filters"], "conv_filters")
        if not conv:
            raise InvalidArgument(f"architecture {arch!r} needs at least one conv layer in "
                                  "'conv_filters'", field="conv_filters")
    return Architecture(arch, dense, conv, int(p["kernel_size"]), float(p["dropout"]))
