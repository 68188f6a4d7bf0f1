"""Registered custom learn blocks used like built-in learning blocks.

An impulse's learning block may have ``type`` ``custom:NAME`` (the latest version of an org's
registered ``learn`` block, resolved when the impulse is validated and again when training
starts) or ``custom:NAME@VERSION`` (pinned). :class:`CustomLearnBlock` implements the
:class:`~tinyforge.learn.base.LearnBlock` interface, so training validates, splits and stores
it like any other block; its ``_train`` runs the block in the learn contract (DESIGN.md §5,
close to Edge Impulse's custom learning blocks) through :func:`tinyforge.blocks.run.run_block`
with the engine policy of :mod:`tinyforge.blocks.registered` (podman for an image, else the
local command of the stored source when allowed):

- input ``--data-directory``: ``X_split_train.npy`` float32 ``[N, *feature_shape]``,
  ``Y_split_train.npy`` (classification: one-hot float32 ``[N, classes]`` in the order of the
  model's labels, as Edge Impulse writes them; regression: float32 ``[N, outputs]``), and the
  validation split as ``X_split_test.npy`` / ``Y_split_test.npy`` when there is one;
- arguments ``--epochs`` / ``--learning-rate`` from the training options, then the block's
  parameters (validated against its parameters.json: InvalidArgument ``parameters.<key>``);
- output ``model.tflite`` and/or ``saved_model/``.

How the block runs is a :class:`BlockExecution`: by default :class:`InProcessRun` (the block
runs in the training process, engine ``inprocess``); the training pipelines (engines ``local``
and ``argo``) run it as a step of its own instead (:mod:`tinyforge.training.learn_step`):
:class:`StageSplit` stores the split for that step, :class:`StagedOutput` reads back what the
step wrote, and the model is imported exactly as after a run here.

What is stored (:class:`CustomModels`): with ``saved_model/`` the platform converts it with
its own quantization path (:func:`tinyforge.quantize.convert.keras_to_tflite`, batch 1,
representative data = training features) into float32 and full-int8 TFLite; otherwise the
block's ``model.tflite`` is kept as what it is (float32 or int8, read from its input tensor
type) and the other form is recorded as missing. ``info.task`` in parameters.json says what
the block learns: ``classification`` (default) or ``regression``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from tinyforge.blocks.registered import CUSTOM_PREFIX, choose_engine, resolved_block
from tinyforge.blocks.registry_store import RegisteredBlock
from tinyforge.dsp.params import validate_params
from tinyforge.errors import FailedPrecondition, InvalidArgument
from tinyforge.learn.base import LearnBlock, TrainContext, TrainedModel

TASKS = ("classification", "regression")
FLOAT32, INT8 = "float32", "int8"


@dataclass
class CustomModels:
    """The TFLite forms of a custom block's model (either may be None) and where each came
    from (``sources``: form -> ``block`` or ``platform (saved_model)``); ``missing`` lists the
    forms the platform could not produce, each with the reason in ``notes``."""

    float32: bytes | None
    int8: bytes | None
    sources: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    float32_seconds: float = 0.0
    int8_seconds: float = 0.0

    @property
    def missing(self) -> list[str]:
        return [f for f, b in ((FLOAT32, self.float32), (INT8, self.int8)) if b is None]

    def sizes(self) -> dict[str, int]:
        """Byte sizes of the forms that exist (``float32_bytes`` / ``int8_bytes``)."""
        out = {}
        if self.float32 is not None:
            out["float32_bytes"] = len(self.float32)
        if self.int8 is not None:
            out["int8_bytes"] = len(self.int8)
        return out

    def report(self) -> dict[str, Any]:
        """JSON-safe description for the model record (forms, sources, missing, notes)."""
        return {"forms": [f for f in (FLOAT32, INT8) if f not in self.missing],
                "sources": dict(self.sources), "missing": self.missing,
                "notes": list(self.notes)}


class TFLiteScorer:
    """The trained model of a custom block: its TFLite forms (:class:`CustomModels`).
    ``predict`` runs the float32 form when there is one, else the int8 form (``form`` says
    which); pickled with the model bytes, without the interpreter."""

    def __init__(self, models: CustomModels) -> None:
        if models.float32 is None and models.int8 is None:
            raise InvalidArgument("a custom block model needs a float32 or an int8 TFLite form",
                                  field="model")
        self.models = models
        self._runner: Any = None

    def to_keras(self) -> None:
        """No Keras form: TrainedModel.export_keras gives None, so nothing re-converts it."""
        return None

    @property
    def form(self) -> str:
        return FLOAT32 if self.models.float32 is not None else INT8

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Outputs ``[N, outputs]`` (dequantized for int8) for flat features ``[N, F]``."""
        if self._runner is None:
            from tinyforge.quantize.runner import TFLiteModel

            m = self.models
            self._runner = TFLiteModel(m.float32 if m.float32 is not None else m.int8)
        return self._runner.predict(x)

    def __getstate__(self) -> dict[str, Any]:
        return {"models": self.models}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.models, self._runner = state["models"], None


def custom_models(trained: TrainedModel) -> CustomModels | None:
    """The TFLite forms of a custom block's trained model; None for built-in blocks."""
    return trained.model.models if isinstance(trained.model, TFLiteScorer) else None


class CustomLearnBlock(LearnBlock):
    """A registered learn block version behind the :class:`LearnBlock` interface (see the
    module docstring). ``name`` is ``custom:NAME``; ``implementation_version`` the registered
    version; ``identity`` the hash of its contents."""

    uses_keras = True  # epochs and learning rate are passed to the block
    #: parameter errors name the block's schema: ``parameters.<key>``
    params_field = "parameters."

    def __init__(self, reg: RegisteredBlock, objects: Any = None, *,
                 allow_local: bool | None = None) -> None:
        if reg.type != "learn":
            raise InvalidArgument(f"block {reg.name!r} is a {reg.type} block; a learning block "
                                  "must be a learn block", field="type")
        task = reg.manifest.info.get("task", "classification")
        if task not in TASKS:
            raise InvalidArgument(f"info.task {task!r} of block {reg.name!r} must be one of "
                                  f"{', '.join(TASKS)}", field="info.task")
        self.registered = reg
        self.name = CUSTOM_PREFIX + reg.name
        self.title = reg.manifest.name
        self.description = reg.manifest.description
        self.task = task
        self.params = reg.manifest.parameters
        self.implementation_version = reg.version
        self.identity = reg.identity
        self.objects = objects
        self.allow_local = allow_local
        #: how ``_train`` runs the block (None: in this process, :class:`InProcessRun`)
        self.execution: BlockExecution | None = None
        self._log: Callable[[str], None] = lambda _line: None
        self._cancelled: Callable[[], bool] = lambda: False

    def bound(self, log: Callable[[str], None] | None = None,
              cancelled: Callable[[], bool] | None = None) -> CustomLearnBlock:
        """A copy whose runs stream the block's output to ``log`` and stop when ``cancelled``."""
        other = copy.copy(self)
        other._log = log or self._log
        other._cancelled = cancelled or self._cancelled
        return other

    def validate(self, params: dict[str, Any] | None,
                 field_prefix: str = "parameters.") -> dict[str, Any]:
        """The block's parameters checked against its parameters.json, defaults filled in."""
        return validate_params(self.params, params, field_prefix)

    def schema(self) -> dict[str, Any]:
        """The block's parameters.json, with the registry's name and version in ``info``."""
        doc = self.registered.manifest.to_json()
        doc["info"] = {**doc["info"], "title": self.title, "name": self.name,
                       "task": self.task, "usesKeras": True,
                       "implementationVersion": self.implementation_version,
                       "registryName": self.registered.name, "image": self.registered.image,
                       "imageDigest": self.registered.image_digest}
        return doc

    def engine(self) -> str:
        """``podman`` or ``local``; FailedPrecondition naming why the block cannot run here."""
        return choose_engine(self.registered, self.allow_local)

    def executed_by(self, execution: BlockExecution) -> CustomLearnBlock:
        """A copy whose runs hand the split to ``execution`` instead of running the block in
        this process (see :class:`BlockExecution`)."""
        other = copy.copy(self)
        other.execution = execution
        return other

    def _train(self, ctx: TrainContext, x_train: np.ndarray, y_train: np.ndarray | None,
               x_val: np.ndarray | None, y_val: np.ndarray | None) -> TrainedModel:
        from tinyforge.blocks.errors import BlockFailed

        if y_train is None:
            raise InvalidArgument("a custom learn block needs targets", field="y_train")
        execution = self.execution or InProcessRun()
        shape = ctx.feature_shape
        with tempfile.TemporaryDirectory(prefix="tf-custom-learn-") as tmp:
            data = Path(tmp) / "data"
            data.mkdir()
            if execution.needs_input:
                self.write_split(data, ctx, x_train, y_train, x_val, y_val)
            res = execution(self, ctx, data, Path(tmp) / "out")
            took = "" if res.seconds is None else f" in {res.seconds:.1f} s"
            self._log(f"block {self.name} v{self.registered.version} ({res.engine}) finished"
                      f"{took}; wrote {', '.join(res.files) or 'nothing'}")
            try:
                models = collect_models(res.out_dir, x_train, int(np.prod(shape)),
                                        self._outputs(ctx), seed=ctx.options.seed,
                                        log=self._log)
            except BlockFailed as exc:  # the block exited 0: quote what it said all the same
                raise BlockFailed(f"block {self.name!r}: {exc.summary}", field=exc.field,
                                  log_tail=res.log_tail) from None
        compiles = compiler_check(models, self._log)
        extra = {"custom_block": {
            "name": self.registered.name, "version": self.registered.version,
            "identity": self.identity, "image": self.registered.run_image,
            "engine": res.engine, "block_files": res.files, "block_seconds": res.seconds,
            "compiles_to_c": compiles, **models.report()}}
        tm = TrainedModel(block=self.name, task=self.task, labels=list(ctx.labels),
                          feature_shape=shape, feature_kind=ctx.feature_kind, params=ctx.params,
                          options=ctx.options, history=[],
                          model=TFLiteScorer(models), extra=extra)
        return tm

    def write_split(self, d: Path, ctx: TrainContext, x_train: np.ndarray, y_train: np.ndarray,
                    x_val: np.ndarray | None, y_val: np.ndarray | None) -> None:
        """The block's input directory: ``X_split_train.npy``/``Y_split_train.npy`` and, when
        there is a validation split, ``X_split_test.npy``/``Y_split_test.npy`` (see the
        module docstring for shapes and encodings)."""
        shape, classes = ctx.feature_shape, len(ctx.labels)
        self._write_split(d, "train", x_train, y_train, shape, classes)
        if x_val is not None and len(x_val) and y_val is not None:
            self._write_split(d, "test", x_val, y_val, shape, classes)

    def _outputs(self, ctx: TrainContext) -> int | None:
        """Outputs the model must have: one score per class (None: not checked)."""
        return len(ctx.labels) if self.task == "classification" else None

    def _write_split(self, d: Path, split: str, x: np.ndarray, y: np.ndarray,
                     shape: tuple[int, ...], classes: int) -> None:
        xs = np.ascontiguousarray(x, dtype=np.float32).reshape((len(x), *shape))
        if self.task == "classification":
            ys = np.zeros((len(y), classes), np.float32)
            ys[np.arange(len(y)), np.asarray(y, dtype=np.int64)] = 1.0
        else:
            ys = np.asarray(y, np.float32).reshape(len(y), -1)
        np.save(d / f"X_split_{split}.npy", xs)
        np.save(d / f"Y_split_{split}.npy", ys)


def _check_tflite(data: bytes, what: str, feature_size: int, outputs: int | None) -> Any:
    """Load a TFLite model and check it reads the features and gives the outputs expected."""
    from tinyforge.blocks.errors import BlockFailed
    from tinyforge.quantize.runner import TFLiteModel

    try:
        m = TFLiteModel(data)
    except InvalidArgument as exc:
        raise BlockFailed(f"{what} cannot be used: {exc.message}") from None
    if m.input_size != feature_size:
        raise BlockFailed(f"{what} takes {m.input_size} input values (shape "
                          f"{list(m.input_shape)}); the impulse gives {feature_size} features "
                          "per window")
    n_out = int(np.prod(m._out["shape"][1:])) if len(m._out["shape"]) > 1 else 1
    if outputs is not None and n_out != outputs:
        raise BlockFailed(f"{what} has {n_out} outputs; the model must give one score per "
                          f"class ({outputs} classes)")
    return m


def collect_models(out_dir: Path, x_train: np.ndarray, feature_size: int, outputs: int | None,
                   *, seed: int = 0, log: Callable[[str], None] = lambda _m: None
                   ) -> CustomModels:
    """The TFLite forms from a custom learn block's output directory (see the module
    docstring). BlockFailed when what the block wrote cannot be used."""
    from tinyforge.blocks.errors import BlockFailed

    saved = out_dir / "saved_model"
    tfl = out_dir / "model.tflite"
    notes: list[str] = []
    if (saved / "saved_model.pb").is_file():
        try:
            models = _from_saved_model(saved, x_train, feature_size, seed)
        except BlockFailed:
            raise
        except Exception as exc:  # the block's SavedModel may hold anything: say what failed
            msg = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
            if not tfl.is_file():
                raise BlockFailed(f"saved_model/ could not be converted to TFLite: {msg}"[:2000]
                                  ) from None
            notes.append(f"saved_model/ could not be converted ({msg[:300]}); "
                         "using the block's model.tflite")
            log(f"warning: {notes[-1]}")
        else:
            for form in (FLOAT32, INT8):
                data = getattr(models, form)
                _check_tflite(data, f"the {form} model converted from saved_model/",
                              feature_size, outputs)
            if tfl.is_file():
                notes.append("model.tflite of the block not used: the float32 and int8 forms "
                             "were converted from its saved_model/")
            log(f"saved_model/ converted: float32 {len(models.float32 or b'')} bytes, int8 "
                f"{len(models.int8 or b'')} bytes")
            models.notes = notes + models.notes
            return models
    if not tfl.is_file():
        raise BlockFailed("the block wrote neither a usable saved_model/ nor model.tflite")
    data = tfl.read_bytes()
    m = _check_tflite(data, "model.tflite", feature_size, outputs)
    if m.input_dtype == np.int8:
        form, other = INT8, FLOAT32
        notes.append("the block gave only an int8 model.tflite: no float32 form (float "
                     "results are not available; write saved_model/ to get both)")
    elif m.input_dtype == np.float32:
        form, other = FLOAT32, INT8
        notes.append("the block gave only a float32 model.tflite: no int8 form, so the model "
                     "cannot be compiled for microcontrollers (write saved_model/ so the "
                     "platform quantizes it, or an int8 model.tflite)")
    else:
        raise BlockFailed(f"model.tflite takes {m.input_dtype} input; expected float32 or int8")
    log(f"model.tflite is a {form} model ({len(data)} bytes); missing: {other}")
    return CustomModels(float32=data if form == FLOAT32 else None,
                        int8=data if form == INT8 else None, sources={form: "block"},
                        notes=notes)


def compiler_check(models: CustomModels, log: Callable[[str], None] = lambda _m: None
                   ) -> bool | None:
    """Whether the int8 form compiles to C (:mod:`tinyforge.compiler`); None without an int8
    form. A model that does not is still stored (it classifies and tests on the platform);
    the reason is added to ``models.notes`` so the record says why builds will refuse it."""
    if models.int8 is None:
        return None
    from tinyforge.compiler.importer import load_tflite

    try:
        load_tflite(models.int8)
    except InvalidArgument as exc:
        models.notes.append(f"the int8 model cannot be compiled to C for devices: {exc.message}")
        log(f"warning: {models.notes[-1]}")
        return False
    return True


def _check_signature(path: Path, feature_size: int) -> None:
    """BlockFailed unless the SavedModel's serving signature takes one float input of
    ``feature_size`` values per window (any batch dimension)."""
    import tensorflow as tf

    from tinyforge.blocks.errors import BlockFailed

    sig = tf.saved_model.load(str(path)).signatures.get("serving_default")
    if sig is None:
        raise BlockFailed("saved_model/ has no serving_default signature")
    args, kwargs = sig.structured_input_signature
    specs = [*tf.nest.flatten(args), *tf.nest.flatten(kwargs)]
    if len(specs) != 1:
        raise BlockFailed(f"saved_model/ takes {len(specs)} inputs; expected one (the features)")
    dims = specs[0].shape.as_list()[1:]
    if None in dims or int(np.prod(dims)) != feature_size:
        raise BlockFailed(f"saved_model/ takes {int(np.prod([d or 0 for d in dims]))} input "
                          f"values (shape {specs[0].shape.as_list()}); the impulse gives "
                          f"{feature_size} features per window")


def _from_saved_model(path: Path, x_train: np.ndarray, feature_size: int,
                      seed: int) -> CustomModels:
    """Float32 and full-int8 TFLite of a SavedModel with one input ``[batch, F]`` and one
    output, through the platform's Keras conversion (batch 1, representative subset of the
    training features)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from tinyforge.quantize.convert import (
        DEFAULT_REPRESENTATIVE_SAMPLES,
        keras_to_tflite,
        representative_subset,
    )

    _check_signature(path, feature_size)
    layer = keras.layers.TFSMLayer(str(path), call_endpoint="serving_default")
    inp = keras.Input((feature_size,), batch_size=1, dtype="float32")
    out = layer(inp)
    if isinstance(out, dict):
        if len(out) != 1:
            raise InvalidArgument(f"the SavedModel's serving signature has {len(out)} outputs "
                                  f"({', '.join(sorted(out))}); expected one", field="model")
        out = next(iter(out.values()))
    model = keras.Model(inp, out)
    flat = np.asarray(x_train, np.float32).reshape(len(x_train), -1)
    rep = representative_subset(flat, DEFAULT_REPRESENTATIVE_SAMPLES, seed)
    t0 = time.perf_counter()
    f32 = keras_to_tflite(model)
    t1 = time.perf_counter()
    i8 = keras_to_tflite(model, rep)
    t2 = time.perf_counter()
    src = "platform (from saved_model/)"
    return CustomModels(float32=f32, int8=i8, sources={FLOAT32: src, INT8: src},
                        float32_seconds=t1 - t0, int8_seconds=t2 - t1)


def check_custom_runnable(block: Any) -> None:
    """FailedPrecondition (naming why) when a custom learn block cannot run on this host."""
    if isinstance(block, CustomLearnBlock):
        try:
            block.engine()
        except FailedPrecondition as exc:
            raise FailedPrecondition(exc.message, field="learn_block") from None


# -- how a custom learn block runs -----------------------------------------------------------
@dataclass
class BlockOutput:
    """What a block run left: its output directory, the files in it (relative paths), how long
    it ran (None when not measured here), the engine that ran it and its last log lines."""

    out_dir: Path
    files: list[str]
    seconds: float | None
    engine: str
    log_tail: list[str] = field(default_factory=list)


class BlockExecution(Protocol):
    """How :meth:`CustomLearnBlock._train` gets the block's output: called with the block, the
    train context, the input directory (the split, written first when ``needs_input``) and a
    directory path for the output (not created yet)."""

    needs_input: bool

    def __call__(self, block: CustomLearnBlock, ctx: TrainContext, data: Path,
                 out: Path) -> BlockOutput: ...


class InProcessRun:
    """The block runs here, now (engine ``inprocess``): podman for its image, else its local
    command (:func:`tinyforge.blocks.registered.choose_engine`), output checked by
    :func:`tinyforge.blocks.run.run_block`."""

    needs_input = True

    def __call__(self, block: CustomLearnBlock, ctx: TrainContext, data: Path,
                 out: Path) -> BlockOutput:
        from tinyforge.blocks.run import run_block

        engine = block.engine()
        resolved = resolved_block(block.registered, block.objects, engine)
        t0 = time.perf_counter()
        res = run_block(resolved, data, out, params=ctx.params, engine=engine,
                        epochs=ctx.options.epochs, learning_rate=ctx.options.learning_rate,
                        log=block._log, cancelled=block._cancelled)
        return BlockOutput(res.out_dir, list(res.files), time.perf_counter() - t0, engine,
                           list(res.log_tail))


class SplitStaged(Exception):  # noqa: N818 - a signal, not an error
    """Raised by :class:`StageSplit` once the split is stored: training stops there, the block
    runs as a step of its own. ``files``: the objects written under ``key``."""

    def __init__(self, key: str, files: int) -> None:
        super().__init__(f"split staged under {key} ({files} file(s))")
        self.key, self.files = key, files


class StageSplit:
    """Stores the block's input (the split) under object key ``key`` (``key/X_split_train.npy``
    ...) for the block's own pipeline step, then stops training with :class:`SplitStaged`."""

    needs_input = True

    def __init__(self, objects: Any, key: str) -> None:
        self.objects, self.key = objects, key.rstrip("/")

    def __call__(self, block: CustomLearnBlock, ctx: TrainContext, data: Path,
                 out: Path) -> BlockOutput:
        from tinyforge.workflows.artifacts import ObjectStoreArtifacts

        self.objects.delete_prefix(self.key + "/")  # a retried step starts clean
        n = ObjectStoreArtifacts(self.objects).store(data, self.key)
        raise SplitStaged(self.key, n)


class StagedOutput:
    """The output the block's own pipeline step wrote under object key ``key``, checked as
    :func:`tinyforge.blocks.run.run_block` checks a run's output."""

    needs_input = False
    engine = "pipeline step"

    def __init__(self, objects: Any, key: str) -> None:
        self.objects, self.key = objects, key.rstrip("/")

    def __call__(self, block: CustomLearnBlock, ctx: TrainContext, data: Path,
                 out: Path) -> BlockOutput:
        from tinyforge.blocks.contract import InputInfo, check_output
        from tinyforge.blocks.errors import BlockFailed
        from tinyforge.workflows.artifacts import ArtifactError, ObjectStoreArtifacts

        out.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(ArtifactError):  # nothing stored: the check below says so
            ObjectStoreArtifacts(self.objects).fetch(self.key + "/", out)
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
        problem = check_output("learn", out, InputInfo(data, False))
        if problem:
            raise BlockFailed(f"block {block.name!r} v{block.registered.version}: {problem}",
                              field="learn_block")
        return BlockOutput(out, files, None, self.engine)
