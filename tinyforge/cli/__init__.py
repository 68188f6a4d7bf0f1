"""The ``tinyforge`` command line: one module per area, each exposing ``register(app)``."""
