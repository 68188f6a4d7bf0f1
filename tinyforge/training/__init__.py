"""Training, model testing and live classification over stored impulses and features.

- :mod:`.dataset`: the features feeding one learning block, concatenated per window, and the
  stratified, stable validation split by sample;
- :mod:`.train`: the training job (learn block -> int8/float32 TFLite -> validation metrics ->
  model files stored all-or-nothing);
- :mod:`.testing`: the model-test job over the testing category;
- :mod:`.classify`: one raw sample or stored sample through DSP + model;
- :mod:`.store`: the model object layout and :func:`.store.load_model_files`;
- :mod:`.version`: the code version recorded with every model.
"""
