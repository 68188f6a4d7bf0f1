"""Learning blocks: classifier, regression, anomaly (K-means, GMM), classical (scikit-learn).

One module per block; the shared contract is in :mod:`.base`, input checks in :mod:`.checks`,
the validation split in :mod:`.split`, Keras helpers in :mod:`.keras_models` (imported lazily:
TensorFlow costs seconds to import). Find blocks by name with :mod:`tinyforge.learn.registry`;
the on-disk custom-block contract (``--data-directory``...) is :mod:`.contract`; registered
custom learn blocks (``custom:NAME[@VERSION]`` in an impulse) are :mod:`.custom`.
"""
