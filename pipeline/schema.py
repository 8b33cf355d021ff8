"""Moved to `core.schema` (the ground layer). This name stays only for training/, whose imports
issue 26 rewrites; nothing else may import it (tests/test_layers.py)."""

from core.schema import split_file  # noqa: F401
