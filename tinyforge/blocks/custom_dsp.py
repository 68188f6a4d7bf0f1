"""Registered custom DSP blocks used like built-in processing blocks.

An impulse's processing block may name ``custom:NAME`` (the latest version of an org's
registered DSP block, resolved when the impulse is validated or run) or ``custom:NAME@VERSION``
(pinned). A *resolver* turns a block name into a :class:`~tinyforge.dsp.base.ProcessingBlock`:
built-in names go to :func:`tinyforge.dsp.registry.get_block`, ``custom:`` names to a
:class:`CustomDspBlock` wrapping the registered version, so validation, block hashes, feature
generation and RunBlock treat both alike.

A :class:`CustomDspBlock` computes features by running the block in the DSP batch contract
(``--in X.npy --out features.npy --params JSON``, X float32 ``[N, T, axes]`` or
``[N, H, W, C]``) through :func:`tinyforge.blocks.run.run_block`: as a podman container when the
version has an image and podman works here, else as its ``info.localCommand`` from the stored
source archive (when local commands are allowed: ``TINYFORGE_BLOCKS_LOCAL_COMMANDS``, on by
default in embedded mode, off with a MinIO object store, i.e. in the cluster) — the policy of
:mod:`tinyforge.blocks.registered`, shared with custom learn blocks. The output
shape of a custom block is learned from its output (it is not declared in parameters.json).
"""

from __future__ import annotations

import copy
import json
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tinyforge.blocks.contract import DSP_FEATURES
from tinyforge.blocks.registered import (
    CUSTOM_PREFIX,
    choose_engine,
    is_custom,
    local_commands_allowed,
    parse_custom_ref,
    resolved_block,
)
from tinyforge.blocks.registry_store import RegisteredBlock
from tinyforge.dsp.base import OUTPUT_KINDS, ProcessingBlock
from tinyforge.errors import FailedPrecondition, InvalidArgument

__all__ = ["CUSTOM_PREFIX", "CustomDspBlock", "RegistryResolver", "is_custom",
           "local_commands_allowed", "parse_custom_ref", "project_resolver", "session_resolver"]

BlockResolver = Callable[[str], ProcessingBlock]

_shapes: dict[tuple[str, str, tuple[int, ...]], tuple[int, ...]] = {}
_lock = threading.Lock()


class CustomDspBlock(ProcessingBlock):
    """A registered DSP block version behind the :class:`ProcessingBlock` interface.

    ``name`` is ``custom:NAME``; ``implementation_version`` the registered version; ``identity``
    the hash of what determines its output (manifest, image and digest, source archive), which
    block hashes include so a re-registered block never reuses stale features.
    """

    #: the output shape is learned by running the block (see :meth:`learned_shape`)
    dynamic_output = True

    def __init__(self, reg: RegisteredBlock, objects: Any = None, *,
                 allow_local: bool | None = None) -> None:
        info = reg.manifest.info
        kind = info.get("outputType", "flat")
        if kind not in OUTPUT_KINDS:
            raise InvalidArgument(f"info.outputType {kind!r} of block {reg.name!r} is not one "
                                  f"of {', '.join(OUTPUT_KINDS)}", field="info.outputType")
        source = info.get("input", "time-series")
        if source not in ("time-series", "image"):
            raise InvalidArgument(f"info.input {source!r} of block {reg.name!r} must be "
                                  "time-series or image", field="info.input")
        self.registered = reg
        self.name = CUSTOM_PREFIX + reg.name
        self.title = reg.manifest.name
        self.description = reg.manifest.description
        self.implementation_version = reg.version
        self.identity = reg.identity
        self.output_kind = kind
        self.params = reg.manifest.parameters
        self.single_axis = bool(info.get("singleAxis", False))
        self.image_input = source == "image"
        self.objects = objects
        self.allow_local = local_commands_allowed() if allow_local is None else allow_local
        self._log: Callable[[str], None] = lambda _line: None
        self._cancelled: Callable[[], bool] = lambda: False

    def bound(self, log: Callable[[str], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> CustomDspBlock:
        """A copy whose runs stream the block's output to ``log`` and stop when ``cancelled``."""
        other = copy.copy(self)
        other._log = log or self._log
        other._cancelled = cancelled or self._cancelled
        return other

    # -- ProcessingBlock ----------------------------------------------------------------------
    def _shape_key(self, p: dict[str, Any], window_shape: tuple[int, ...]
                   ) -> tuple[str, str, tuple[int, ...]]:
        return (self.identity, json.dumps(p, sort_keys=True), tuple(window_shape))

    def learned_shape(self, p: dict[str, Any], window_shape: tuple[int, ...]
                      ) -> tuple[int, ...] | None:
        """The per-window output shape seen on an earlier run with these params, if any."""
        with _lock:
            return _shapes.get(self._shape_key(p, window_shape))

    def _check(self, p: dict[str, Any], fs: float, window_shape: tuple[int, ...],
               field_prefix: str) -> tuple[int, ...]:
        # Nothing to check beyond the schema (done by validate); the shape is known only once
        # the block ran: () until then (callers check ``dynamic_output``).
        return self.learned_shape(p, window_shape) or ()

    def schema(self) -> dict[str, Any]:
        """The block's parameters.json, with the registry's name and version in ``info``."""
        doc = self.registered.manifest.to_json()
        doc["info"] = {**doc["info"], "title": self.title, "name": self.name,
                       "implementationVersion": self.implementation_version,
                       "outputType": self.output_kind, "singleAxis": self.single_axis,
                       "input": "image" if self.image_input else "time-series",
                       "registryName": self.registered.name,
                       "image": self.registered.image, "imageDigest": self.registered.image_digest}
        return doc

    def engine(self) -> str:
        """How this block would run here now: ``podman`` or ``local``; FailedPrecondition if
        neither is possible (naming why). See :func:`tinyforge.blocks.registered.choose_engine`."""
        return choose_engine(self.registered, self.allow_local)

    def batch_input(self, signals: np.ndarray, fs: float, params: dict[str, Any] | None = None
                    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Check a batch ``[N, *window]`` and the params as a run of the block would: the
        float32 contiguous ``X.npy`` the block receives and the validated params (defaults
        filled in). InvalidArgument for bad input or params."""
        signals = np.asarray(signals)
        if signals.ndim < 2:
            raise InvalidArgument(f"batch must be [N, T, axes] (or [N, H, W, C]), got shape "
                                  f"{signals.shape}", field="signal")
        if not np.issubdtype(signals.dtype, np.number):
            raise InvalidArgument("signal must be numeric", field="signal")
        p, _spec = self.check(params, fs, signals.shape[1:])
        x = np.ascontiguousarray(signals, dtype=np.float32)
        if not np.all(np.isfinite(x)):
            raise InvalidArgument("signal contains NaN or infinite values", field="signal")
        return x, p

    def load_output(self, out_dir: Path, rows: int, p: dict[str, Any],
                    window_shape: tuple[int, ...], *, where: str | None = None) -> np.ndarray:
        """The features a run of the block over ``rows`` windows of ``window_shape`` with
        validated params ``p`` left in ``out_dir``: float32 ``[rows, *output shape]``, the
        shape remembered (:meth:`learned_shape`). BlockFailed (naming the block) when the output
        breaks the contract (missing, wrong row count, not finite); ``where`` names the run in
        the message (default: the block and version)."""
        from tinyforge.blocks.contract import InputInfo, check_output
        from tinyforge.blocks.errors import BlockFailed

        problem = check_output("dsp", out_dir, InputInfo(out_dir, True, rows=rows))
        if problem is not None:
            where = where or f"block {self.name!r} v{self.implementation_version}"
            raise BlockFailed(f"{where}: {problem}", field="block")
        feats = np.load(out_dir / DSP_FEATURES, allow_pickle=False)
        feats = np.asarray(feats, dtype=np.float32).reshape(rows, -1) if feats.ndim == 1 \
            else feats.astype(np.float32, copy=False)
        with _lock:
            _shapes[self._shape_key(p, tuple(window_shape))] = tuple(
                int(d) for d in feats.shape[1:])
        return feats

    def features_batch(self, signals: np.ndarray, fs: float,
                       params: dict[str, Any] | None = None) -> np.ndarray:
        """Run the block once over N windows ``[N, *window]``: float32 ``[N, *output shape]``.

        Raises InvalidArgument for bad input or params, the :mod:`tinyforge.blocks.errors`
        classes (with the block's log tail) when the block fails, times out or writes no
        valid features.
        """
        from tinyforge.blocks.run import run_block

        x, p = self.batch_input(signals, fs, params)
        n = x.shape[0]
        if n == 0:
            shape = self.learned_shape(p, x.shape[1:])
            if shape is None:
                raise FailedPrecondition(f"the output shape of block {self.name!r} is not known "
                                         "before it ran on a window", field="block")
            return np.zeros((0, *shape), np.float32)
        reg = self.registered
        engine = self.engine()
        resolved = resolved_block(reg, self.objects, engine)
        with tempfile.TemporaryDirectory(prefix="tf-custom-dsp-") as tmp:
            in_path = Path(tmp) / "in" / "X.npy"
            in_path.parent.mkdir()
            np.save(in_path, x)
            res = run_block(resolved, in_path, Path(tmp) / "out", params=p, engine=engine,
                            log=self._log, cancelled=self._cancelled)
            return self.load_output(res.out_dir, n, p, x.shape[1:])


class RegistryResolver:
    """Block names -> ProcessingBlocks: built-in names, or ``custom:`` names looked up in an
    organization's registry (each name looked up once per resolver, so one generation run
    sees one version throughout). :meth:`learn_block` resolves custom learning blocks."""

    def __init__(self, lookup: Callable[[str, int], RegisteredBlock], objects: Any = None, *,
                 allow_local: bool | None = None) -> None:
        self._lookup = lookup
        self.objects = objects
        self.allow_local = allow_local
        self._cache: dict[str, ProcessingBlock] = {}
        self._learn: dict[str, Any] = {}

    def __call__(self, block: str) -> ProcessingBlock:
        from tinyforge.dsp.registry import get_block

        if not is_custom(block):
            return get_block(block)
        if block not in self._cache:
            name, version = parse_custom_ref(block)
            reg = self._lookup(name, version)
            if reg.type != "dsp":
                raise InvalidArgument(f"block {name!r} is a {reg.type} block; a processing "
                                      "block must be a dsp block", field="block")
            self._cache[block] = CustomDspBlock(reg, self.objects, allow_local=self.allow_local)
        return self._cache[block]

    def learn_block(self, block_type: str) -> Any:
        """A learning block ``type`` ``custom:NAME[@VERSION]`` -> its
        :class:`tinyforge.learn.custom.CustomLearnBlock` (InvalidArgument for a malformed
        reference or a block of another type, NotFound for an unknown name or version)."""
        from tinyforge.learn.custom import CustomLearnBlock

        key = "learn " + block_type
        if key not in self._learn:
            name, version = parse_custom_ref(block_type, field="type")
            self._learn[key] = CustomLearnBlock(self._lookup(name, version), self.objects,
                                                allow_local=self.allow_local)
        return self._learn[key]


def session_resolver(s: Any, org_id: int, objects: Any = None) -> RegistryResolver:
    """A resolver reading an organization's registry through an open session."""
    from tinyforge.blocks.registry_store import get_registered_block

    return RegistryResolver(lambda name, v: get_registered_block(s, org_id, name, v), objects)


def project_resolver(db: Any, objects: Any, project_id: int) -> RegistryResolver:
    """A resolver for a project's impulses: the registry of the project's organization (one
    short session per lookup)."""
    from tinyforge.accounts.projects import get_project
    from tinyforge.blocks.registry_store import get_registered_block

    with db.session() as s:
        org_id = get_project(s, project_id).org_id

    def lookup(name: str, version: int) -> RegisteredBlock:
        with db.session() as s:
            return get_registered_block(s, org_id, name, version)

    return RegistryResolver(lookup, objects)


def pin_custom_blocks(impulse: dict[str, Any], resolver: RegistryResolver) -> dict[str, Any]:
    """A copy of impulse dict ``impulse`` whose ``custom:NAME`` processing blocks name the
    version ``resolver`` resolves them to (``custom:NAME@V``): what a trained model records, so
    classifying with it later runs the block version its features came from."""
    out = copy.deepcopy(impulse)
    for b in out.get("processing", []):
        ref = b.get("block")
        if is_custom(ref):
            block = resolver(ref)
            b["block"] = f"{block.name}@{block.implementation_version}"
    return out
