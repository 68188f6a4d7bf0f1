"""Serving a trained impulse (DSP + model) as a KServe model server.

- :mod:`tinyforge.serving.model_dir`: the model directory layout (``impulse.json``,
  ``labels.json``, ``model_int8.tflite``, ``model_float32.tflite``, optional ``anomaly.json``)
  written by the ``kserve`` deployment format and read by the predictor, from a directory or
  the artifact zip.
- :mod:`tinyforge.serving.runtime`: the whole impulse in numpy + LiteRT, no server: raw windows
  or sample files (WAV/CSV/JSON/CBOR/images) -> windows -> DSP -> int8 or float model -> scores.
- :mod:`tinyforge.serving.predictor`: ``ImpulseModel(kserve.Model)``, mapping the v1 and v2
  (open inference protocol) requests onto the runtime.
- :mod:`tinyforge.serving.server`: start a KServe ``ModelServer`` bound to a chosen host.
"""
