"""Moved to `core.tokenizer` (the ground layer). This name stays only for training/, whose imports
issue 26 rewrites; nothing else may import it (tests/test_layers.py)."""

from core.tokenizer import TokenizerUnavailable, load_tokenizer, same_tokenizer, tokenizer_identity  # noqa: F401
