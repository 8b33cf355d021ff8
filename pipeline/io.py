"""Moved to `core.io` (the ground layer). This name stays only for training/, whose imports
issue 26 rewrites; nothing else may import it (tests/test_layers.py)."""

from core.io import UserError, atomic_write, dumps, read_json, run_main, setup_logging, write_json  # noqa: F401
