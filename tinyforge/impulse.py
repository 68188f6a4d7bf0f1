"""Impulse definition: input block + processing blocks + learning blocks.

An impulse is plain data: :class:`Impulse` holds a :class:`TimeSeriesInput` or an
:class:`ImageInput`, a list of :class:`ProcessingBlockDef` (each a registered DSP block on a
subset of the input axes) and a list of :class:`LearningBlockDef` (opaque type + params + which
processing blocks feed it). :meth:`Impulse.validate` checks everything, including each block's
parameters against the window the input block produces; :func:`diff` lists changed fields
between two versions; :func:`block_hash` is the content hash of what determines one block's
features (used to skip unchanged work in incremental feature generation).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tinyforge.errors import InvalidArgument, NotFound

if TYPE_CHECKING:
    from tinyforge.dsp.base import ProcessingBlock

#: turns a processing block name (``mfcc``, ``custom:NAME@2``) into the block; NotFound if none
BlockResolver = Callable[[str], "ProcessingBlock"]

RESIZE_MODES = ("fit-short", "fit-long", "squash", "crop")
COLORS = ("rgb", "grayscale")
_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
#: bump when the meaning of a stored impulse changes (from_json refuses newer versions)
SCHEMA_VERSION = 1


@dataclass
class TimeSeriesInput:
    """Windows of ``window_size_ms`` every ``window_stride_ms`` at ``frequency_hz``.

    ``zero_pad``: samples shorter than one window are zero-padded to a window (True) or dropped
    (False). ``axes``: the sensor names the impulse uses, in order.
    """

    window_size_ms: float
    window_stride_ms: float
    frequency_hz: float
    axes: list[str]
    zero_pad: bool = True
    type: str = "time-series"

    @property
    def window_samples(self) -> int:
        """Samples per window at ``frequency_hz``."""
        return int(round(self.window_size_ms * self.frequency_hz / 1000.0))

    @property
    def stride_samples(self) -> int:
        return max(1, int(round(self.window_stride_ms * self.frequency_hz / 1000.0)))

    def window_shape(self, axes: list[str] | None = None) -> tuple[int, int]:
        return (self.window_samples, len(self.axes if axes is None else axes))


@dataclass
class ImageInput:
    """Images resized to ``width`` x ``height`` by ``resize_mode``, in ``color``."""

    width: int
    height: int
    resize_mode: str = "squash"
    color: str = "rgb"
    type: str = "image"

    @property
    def channels(self) -> int:
        return 3 if self.color == "rgb" else 1

    @property
    def axes(self) -> list[str]:
        return ["R", "G", "B"] if self.color == "rgb" else ["Y"]

    def window_shape(self, axes: list[str] | None = None) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)


@dataclass
class ProcessingBlockDef:
    """One processing block: unique ``name``, registered ``block`` type, params, axes used."""

    name: str
    block: str
    params: dict[str, Any] = field(default_factory=dict)
    axes: list[str] = field(default_factory=list)  # empty = all input axes


@dataclass
class LearningBlockDef:
    """One learning block: ``type`` + opaque ``params`` + the processing blocks feeding it."""

    name: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)


@dataclass
class Impulse:
    input: TimeSeriesInput | ImageInput
    processing: list[ProcessingBlockDef] = field(default_factory=list)
    learning: list[LearningBlockDef] = field(default_factory=list)

    # -- lookup --------------------------------------------------------------------------------
    def processing_block(self, name: str) -> ProcessingBlockDef:
        for b in self.processing:
            if b.name == name:
                return b
        raise NotFound(f"impulse has no processing block {name!r}", field="processing")

    def block_axes(self, block: ProcessingBlockDef) -> list[str]:
        """The axes a processing block reads (all input axes when it names none)."""
        return list(block.axes) if block.axes else list(self.input.axes)

    # -- validation ----------------------------------------------------------------------------
    def validate(self, resolver: BlockResolver | None = None) -> Impulse:
        """Check the whole impulse; raise InvalidArgument with the exact field path.

        Each processing block's parameters are checked against the window the input block
        produces (so a frame count over the limit or a filter cut-off above Nyquist is caught
        here, before any feature generation). ``resolver`` turns block names into blocks
        (default: built-in blocks only); the platform passes one that also knows its
        organization's custom blocks (``custom:NAME[@VERSION]``, see
        :mod:`tinyforge.blocks.custom_dsp`). Returns ``self``.
        """
        get_block = resolver or _builtin_resolver()

        _validate_input(self.input)
        if not self.processing:
            raise InvalidArgument("an impulse needs at least one processing block",
                                  field="processing")  # fmt: skip
        seen: set[str] = set()
        for i, b in enumerate(self.processing):
            path = f"processing[{i}]"
            _check_name(b.name, path + ".name")
            if b.name in seen:
                raise InvalidArgument(f"duplicate processing block name {b.name!r}",
                                      field=path + ".name")  # fmt: skip
            seen.add(b.name)
            try:
                block = get_block(b.block)
            except (NotFound, InvalidArgument) as e:  # unknown, or a malformed custom reference
                raise InvalidArgument(e.message, field=path + ".block") from None
            if not isinstance(b.params, dict):
                raise InvalidArgument("params must be an object", field=path + ".params")
            is_image = isinstance(self.input, ImageInput)
            if block.image_input != is_image:
                kind = "an image" if block.image_input else "a time-series"
                raise InvalidArgument(
                    f"block {b.block!r} needs {kind} input block, the impulse has "
                    f"{self.input.type}",
                    field=path + ".block",
                )
            axes = self.block_axes(b)
            if is_image and b.axes:
                raise InvalidArgument("image blocks take no axes", field=path + ".axes")
            if len(set(axes)) != len(axes):
                raise InvalidArgument("axes must not repeat", field=path + ".axes")
            for a in axes:
                if a not in self.input.axes:
                    raise InvalidArgument(
                        f"axis {a!r} is not an input axis ({', '.join(self.input.axes)})",
                        field=path + ".axes",
                    )
            fs = 0.0 if is_image else float(self.input.frequency_hz)
            block.check(b.params, fs, self.input.window_shape(axes), field_prefix=path + ".params.")
        lseen: set[str] = set()
        for i, lb in enumerate(self.learning):
            path = f"learning[{i}]"
            _check_name(lb.name, path + ".name")
            if lb.name in lseen or lb.name in seen:
                raise InvalidArgument(f"duplicate block name {lb.name!r}", field=path + ".name")
            lseen.add(lb.name)
            if not isinstance(lb.type, str) or not lb.type:
                raise InvalidArgument("learning block type must be a non-empty string",
                                      field=path + ".type")  # fmt: skip
            if not isinstance(lb.params, dict):
                raise InvalidArgument("params must be an object", field=path + ".params")
            if lb.type.startswith("custom:"):
                _check_custom_learn(lb, resolver, path)
            if not lb.inputs:
                raise InvalidArgument("a learning block needs at least one input block",
                                      field=path + ".inputs")  # fmt: skip
            for name in lb.inputs:
                if name not in seen:
                    raise InvalidArgument(
                        f"input {name!r} is not a processing block of this impulse "
                        f"({', '.join(sorted(seen))})",
                        field=path + ".inputs",
                    )
        return self

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"version": SCHEMA_VERSION, **asdict(self)}

    def to_json(self) -> str:
        """Canonical JSON (sorted keys): equal impulses give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Impulse:
        """Build from a dict; InvalidArgument on a malformed structure (not yet validated)."""
        if not isinstance(d, dict):
            raise InvalidArgument("impulse must be a JSON object", field="impulse")
        version = d.get("version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise InvalidArgument(f"unsupported impulse version {version!r}", field="version")
        inp = d.get("input")
        if not isinstance(inp, dict):
            raise InvalidArgument("input block missing", field="input")
        kind = inp.get("type", "time-series")
        inp = {k: v for k, v in inp.items() if k != "type"}
        try:
            if kind == "time-series":
                input_block: TimeSeriesInput | ImageInput = TimeSeriesInput(**inp)
            elif kind == "image":
                input_block = ImageInput(**inp)
            else:
                raise InvalidArgument(f"input type must be time-series or image, got {kind!r}",
                                      field="input.type")  # fmt: skip
        except TypeError as e:
            raise InvalidArgument(f"bad input block: {e}", field="input") from None
        processing = _list_of(d.get("processing", []), ProcessingBlockDef, "processing")
        learning = _list_of(d.get("learning", []), LearningBlockDef, "learning")
        return cls(input=input_block, processing=processing, learning=learning)

    @classmethod
    def from_json(cls, text: str | bytes) -> Impulse:
        try:
            d = json.loads(text)
        except (ValueError, TypeError) as e:
            raise InvalidArgument(f"impulse is not valid JSON: {e}", field="impulse") from None
        return cls.from_dict(d)


def _builtin_resolver() -> BlockResolver:
    from tinyforge.dsp.registry import get_block

    def resolve(name: str) -> ProcessingBlock:
        if isinstance(name, str) and name.startswith("custom:"):
            raise NotFound(f"block {name!r} is a custom block: it can only be resolved against "
                           "the platform's block registry", field="block")
        return get_block(name)

    return resolve


def _check_custom_learn(lb: LearningBlockDef, resolver: BlockResolver | None, path: str) -> None:
    """A ``custom:NAME[@VERSION]`` learning block: with a registry resolver (one with
    ``learn_block``, see :mod:`tinyforge.learn.custom`) a registered learn block of the org
    whose parameters.json accepts ``lb.params``; without one (code that only needs the
    processing chain, e.g. a deployment build) a well-formed reference. Built-in learning
    block types stay opaque here (checked when training starts)."""
    from tinyforge.blocks.registered import parse_custom_ref

    learn_block = getattr(resolver, "learn_block", None)
    try:
        if learn_block is None:
            parse_custom_ref(lb.type, field="type")
            return
        block = learn_block(lb.type)
    except (NotFound, InvalidArgument) as e:  # unknown, wrong type, malformed reference
        raise InvalidArgument(e.message, field=path + ".type") from None
    block.validate(lb.params, field_prefix=path + ".params.")


def _list_of(items: Any, cls: type, path: str) -> list:
    if not isinstance(items, list):
        raise InvalidArgument(f"{path} must be a list", field=path)
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidArgument("block must be an object", field=f"{path}[{i}]")
        try:
            out.append(cls(**item))
        except TypeError as e:
            raise InvalidArgument(f"bad block: {e}", field=f"{path}[{i}]") from None
    return out


def _check_name(name: Any, path: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgument(
            f"block name {name!r} must start with a letter and hold 1-64 letters, digits, "
            "'_' or '-'",
            field=path,
        )


def _positive(value: Any, path: str, lo: float, hi: float) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not lo <= value <= hi:
        raise InvalidArgument(f"{path.split('.')[-1]} = {value!r} must be in {lo:g}..{hi:g}",
                              field=path)  # fmt: skip


def _validate_input(inp: TimeSeriesInput | ImageInput) -> None:
    if isinstance(inp, TimeSeriesInput):
        _positive(inp.frequency_hz, "input.frequency_hz", 0.001, 1_000_000)
        _positive(inp.window_size_ms, "input.window_size_ms", 1, 3_600_000)
        _positive(inp.window_stride_ms, "input.window_stride_ms", 1, 3_600_000)
        if inp.window_samples < 1:
            raise InvalidArgument(
                f"a {inp.window_size_ms:g} ms window holds no sample at {inp.frequency_hz:g} Hz",
                field="input.window_size_ms",
            )
        if not isinstance(inp.zero_pad, bool):
            raise InvalidArgument("zero_pad must be true or false", field="input.zero_pad")
        if (not isinstance(inp.axes, list) or not inp.axes
                or not all(isinstance(a, str) and a for a in inp.axes)):  # fmt: skip
            raise InvalidArgument("axes must be a non-empty list of axis names",
                                  field="input.axes")  # fmt: skip
        if len(set(inp.axes)) != len(inp.axes):
            raise InvalidArgument("input axes must not repeat", field="input.axes")
    else:
        for key in ("width", "height"):
            v = getattr(inp, key)
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 4096:
                raise InvalidArgument(f"{key} = {v!r} must be an integer in 1..4096",
                                      field=f"input.{key}")  # fmt: skip
        if inp.resize_mode not in RESIZE_MODES:
            raise InvalidArgument(
                f"resize_mode {inp.resize_mode!r} must be one of {', '.join(RESIZE_MODES)}",
                field="input.resize_mode",
            )
        if inp.color not in COLORS:
            raise InvalidArgument(f"color {inp.color!r} must be one of {', '.join(COLORS)}",
                                  field="input.color")  # fmt: skip


# -- diff and hashing -------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """One changed field: dotted path, value in ``a`` and in ``b`` (None when absent)."""

    path: str
    old: Any
    new: Any


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):  # an empty dict adds no path: {} and a missing key compare equal
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value


def _keyed(blocks: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    # blocks are compared by name, so re-ordering or inserting a block does not shift others
    return {b["name"]: b for b in blocks}


def diff(a: Impulse, b: Impulse) -> list[Change]:
    """Fields that differ between impulses ``a`` and ``b``, sorted by path.

    Blocks are matched by name: paths read ``processing.<name>.params.<param>``; an added or
    removed block shows as one change with ``old`` or ``new`` None. Block order changes show as
    ``processing.order``.
    """
    da, db = a.to_dict(), b.to_dict()
    fa: dict[str, Any] = {}
    fb: dict[str, Any] = {}
    _flatten(da["input"], "input", fa)
    _flatten(db["input"], "input", fb)
    for section in ("processing", "learning"):
        ka, kb = _keyed(da[section]), _keyed(db[section])
        for name in ka.keys() | kb.keys():
            if name not in ka or name not in kb:
                (fa if name in ka else fb)[f"{section}.{name}"] = ka.get(name) or kb.get(name)
                continue
            _flatten(ka[name], f"{section}.{name}", fa)
            _flatten(kb[name], f"{section}.{name}", fb)
        order_a, order_b = list(ka), list(kb)
        common = [n for n in order_a if n in kb]
        if common != [n for n in order_b if n in ka]:
            fa[f"{section}.order"], fb[f"{section}.order"] = order_a, order_b
    changes = [
        Change(p, fa.get(p), fb.get(p))
        for p in sorted(fa.keys() | fb.keys())
        if fa.get(p) != fb.get(p) or (p in fa) != (p in fb)
    ]
    return changes


def block_hash(impulse: Impulse, block_name: str,
               resolver: BlockResolver | None = None) -> str:
    """sha256 (hex) of everything that determines one processing block's features.

    Covers the block type, its implementation version, its *validated* parameters (so spelling
    a default explicitly does not change the hash), its axes and the input block (window size,
    stride, frequency, padding or image geometry). Learning blocks and other processing blocks
    do not enter, so editing them keeps this block's features reusable. A custom block (from
    ``resolver``) adds its ``identity``: the hash of its registered version's contents.
    """
    b = impulse.processing_block(block_name)
    block = (resolver or _builtin_resolver())(b.block)
    payload = {
        "block": b.block,
        "implementation_version": block.implementation_version,
        "params": block.validate(b.params),
        "axes": impulse.block_axes(b),
        "input": asdict(impulse.input),
    }
    identity = getattr(block, "identity", None)
    if identity is not None:  # only custom blocks: built-in hashes stay as they were
        # the contents decide, not the spelling: custom:NAME and custom:NAME@V share features
        payload["block"], payload["identity"] = block.name, identity
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
