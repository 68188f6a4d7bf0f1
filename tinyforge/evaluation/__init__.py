"""Model evaluation: metrics (:mod:`.metrics`), PNG plots (:mod:`.plots`) and the model-test
report over a test set for float and int8 models (:mod:`.testing`)."""
