"""The model stages, one module per stage, named after it; each ends with ``register(Stage(...))``
(transforms/core/registry.py)."""
