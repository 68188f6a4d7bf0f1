"""Post-training quantization: float32 and full-int8 TFLite (:mod:`.convert`), running them
on float features (:mod:`.runner`) and the float-vs-int8 comparison (:mod:`.compare`)."""
