"""Generated features: storage layout, generation job, feature explorer, autotune, plots.

For consumers (the training service), the one function to use is::

    from tinyforge.features import load_features
    fm = load_features(ctx.objects, project_id, impulse_id, version, "mfcc")
    fm.X            # float32 [N, *block output shape]
    fm.y            # int32 [N], index into fm.classes (-1 = unlabeled window)
    fm.sample_ids   # int64 [N]; fm.window_index int32 [N]; fm.window_start_ms float32 [N]
    fm.category     # int8 [N], index into fm.categories ("training", "testing", "anomaly")
    fm.split("training")  # boolean mask
    fm.manifest     # block type, params, block_hash, output shape/type, dataset_hash, ...

The object-store layout is documented in :mod:`tinyforge.features.store`; generation (and its
incremental cache) in :mod:`tinyforge.features.generate`; the 2-D projection in
:mod:`tinyforge.features.explorer`; parameter search in :mod:`tinyforge.features.autotune`;
RunBlock's plot data in :mod:`tinyforge.features.plots`.
"""

from tinyforge.features.store import FeatureMatrix, load_features, read_manifest

__all__ = ["FeatureMatrix", "load_features", "read_manifest"]
