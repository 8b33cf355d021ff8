"""Several repositories into one dataset: each repository's pipeline as a Ray task, then one merge.

    python3 comprehensive_pipeline.py --repo A --repo B [--repos-file LIST] [--workers N] [--ray-address ADDR]

`runner` plans the repositories, resolves the tokenizer once and runs the tasks; `merge` joins
their splits into one dataset. Reference: docs/multi_repo.md.
"""
