"""A custom learn block as a pipeline step of its own (``tinyforge-train``, ``tinyforge-retrain``).

In the cluster a training pod cannot run a block's container, so the training pipelines split
training around the block (``hera_workflows/training.py``):

1. ``train-prepare`` (:func:`prepare_learn_step`): resolves the learning block; for a custom
   block it writes the split the block trains on (the same data, split and files as a run in
   the training process: :func:`tinyforge.training.train.prepare_training_data` and
   :meth:`tinyforge.learn.custom.CustomLearnBlock.write_split`) under
   :func:`in_key` and outputs the block's image and pod spec patch (its contract argv with
   the input at ``/block/in`` and the output at ``/block/out``, and its resources);
2. ``learn-block``: the block's image (only for a custom block);
3. ``train-model``: imports the model the block wrote under :func:`out_key`
   (:class:`tinyforge.training.train.BlockStep`) with the checks, conversion and storage of a
   run in the training process;
4. the exit handler's ``train-cleanup`` (:func:`cleanup_staging`) removes the staging keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tinyforge.jobs.reporter import QuietReporter, Reporter
from tinyforge.store.db import Database
from tinyforge.store.objects import ObjectStore
from tinyforge.training.train import (
    TrainRequest,
    _cancel_flag,
    fit_block,
    plan_training,
    prepare_training_data,
)

#: What the block-step outputs of ``train-prepare`` hold for a built-in learning block (the
#: ``learn-block`` step is skipped, Argo still wants a value for each).
PLACEHOLDER = "none"


def staging_prefix(project_id: int, job_id: int) -> str:
    """Object-key prefix of a training job's staged block input and output."""
    return f"projects/{project_id}/train/{job_id}"


def in_key(project_id: int, job_id: int) -> str:
    """Key of the block's staged input (the split files are ``KEY/X_split_train.npy`` ...)."""
    return f"{staging_prefix(project_id, job_id)}/in"


def out_key(project_id: int, job_id: int) -> str:
    """Key the block's output directory is stored under (``KEY/model.tflite`` ...)."""
    return f"{staging_prefix(project_id, job_id)}/out"


@dataclass(frozen=True)
class LearnStep:
    """What ``train-prepare`` hands the next steps. For a built-in block only ``custom``
    (False) and ``block_type`` mean anything."""

    custom: bool
    block_type: str
    image: str = PLACEHOLDER
    pod_spec_patch: str = "{}"
    in_key: str = ""
    out_key: str = ""
    args: list[str] = field(default_factory=list)
    files: int = 0


def prepare_learn_step(db: Database, objects: ObjectStore, project_id: int, job_id: int,
                       req: TrainRequest, *, reporter: Reporter | None = None) -> LearnStep:
    """Resolve the learning block of ``req``; for a custom block stage its input (see the module
    docstring). Raises what :func:`~tinyforge.training.train.plan_training` and data loading
    raise (bad params, no data, a block that cannot run as a step); nothing stays staged then.
    """
    from tinyforge.blocks.contract import IN_MOUNT, OUT_MOUNT, block_args
    from tinyforge.blocks.step import block_step_image, pod_spec_patch
    from tinyforge.learn.custom import CustomLearnBlock, SplitStaged, StageSplit

    rep: Reporter = reporter or QuietReporter()
    plan = plan_training(db, project_id, req, objects, block_step=True)
    block = plan.block
    if not isinstance(block, CustomLearnBlock):
        rep.log(f"learning block {plan.learn.name!r} is built-in ({block.name}): it trains in "
                "the train step")
        return LearnStep(custom=False, block_type=block.name)
    reg = block.registered
    image = block_step_image(reg, field="learn_block")
    opts = plan.options
    args = block_args(reg.manifest, in_path=IN_MOUNT, in_is_file=False, out_dir=OUT_MOUNT,
                      params=plan.params, epochs=opts.epochs, learning_rate=opts.learning_rate)
    staged = in_key(project_id, job_id)
    stager = block.bound(log=rep.log, cancelled=_cancel_flag(rep)).executed_by(
        StageSplit(objects, staged))
    try:
        data = prepare_training_data(db, objects, project_id, plan, stager, rep)
        fit_block(stager, plan, data, rep)
    except SplitStaged as done:
        files = done.files
    except BaseException:
        cleanup_staging(objects, project_id, job_id)
        raise
    else:  # StageSplit always stops training
        raise AssertionError("the custom block's split was not staged")
    block_type = f"custom:{reg.name}@{reg.version}"
    rep.log(f"learning block {plan.learn.name!r} ({block_type}, image {image}) runs as a step "
            f"of its own on {files} staged file(s) under {staged}")
    return LearnStep(custom=True, block_type=block_type, image=image,
                     pod_spec_patch=pod_spec_patch(args, reg), in_key=staged,
                     out_key=out_key(project_id, job_id), args=args, files=files)


def cleanup_staging(objects: Any, project_id: int, job_id: int) -> int:
    """Remove a training job's staged block input and output; returns the objects removed."""
    return int(objects.delete_prefix(staging_prefix(project_id, job_id) + "/"))
