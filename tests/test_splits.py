"""core/splits.py: the one train/val/test cut-off, checked against hand-worked expectations."""

from __future__ import annotations

import numpy as np
import pytest

from core.splits import SPLITS, SplitPlan, check_ratios, commit_token_counts, split_commits


def test_commit_token_counts_skip_snapshots_and_count_a_separator_per_chunk():
    chunks = [{"kind": "diff", "order": 0, "n_tokens": 4}, {"kind": "diff", "order": 0, "n_tokens": 5},
              {"kind": "commit", "order": 2, "n_tokens": 9}, {"kind": "snapshot", "order": 2, "n_tokens": 100}]
    assert commit_token_counts(chunks) == {0: 11, 2: 10}


@pytest.mark.parametrize("commits, ratios, expected", [
    ([(i, 10) for i in range(20)], (0.85, 0.10, 0.05), (16, 18)),       # 170 / 20 / 10 tokens
    ([(0, 100), (1, 1), (2, 1)], (0.85, 0.10, 0.05), (0, 1)),            # val and test still get a commit
    ([(0, 10), (3, 10), (7, 0), (9, 10), (12, 10)], (0.5, 0.25, 0.25), (3, 9)),  # a commit without tokens
    ([(i, 10) for i in range(10)], (1.0, 0.0, 0.0), (9, 9)),             # all train: val and test empty
])
def test_split_commits_cuts_at_the_commit_nearest_each_share(commits, ratios, expected):
    plan = split_commits(commits, ratios)
    assert (plan.train_last_order, plan.val_last_order) == expected


def test_split_of_and_split_indices_are_one_rule():
    for plan in (SplitPlan(3, 7), SplitPlan(3, 3), SplitPlan(0, 12)):
        orders = np.arange(15)
        assert [SPLITS[i] for i in plan.split_indices(orders)] == [plan.split_of(int(o)) for o in orders]
        assert plan.split_of(plan.train_last_order) == "train" != plan.split_of(plan.train_last_order + 1)


@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.05), (0.0, 0.5, 0.5), (float("nan"), 0.5, 0.5), (0.5, 0.5)])
def test_check_ratios_refuses_what_it_would_otherwise_rescale(ratios):
    with pytest.raises(ValueError):
        check_ratios(ratios)
