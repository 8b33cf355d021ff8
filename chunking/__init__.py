"""Stage 2's building blocks: parsers (function/class boundaries), filters, diff hunks, splitting.

The entry point is `semantic_chunker.py` at the project root; these modules hold no state of
their own except the tree-sitter parsers, created once per language on first use.
"""
