"""One evaluator, the benchmark from the test period, fill-in-the-middle: on the real pipeline's
datasets of click and log (tests/conftest.py), their real clones, a tiny GPT-2 trained here.

What is checked: the trainer's step-0 figures equal evaluate.py's on the same model; the evaluation
set does not depend on the batch size; each split is measured once per evaluation; the benchmark's
tasks are real added lines of the test period; FIM training with the tokenizer's own or added
tokens; the bad inputs (another dataset's evaluation set, FIM without FIM tokens, an empty test
split) are one line and exit code 2.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_trainer_finetune import one_thread, records, tiny  # noqa: F401 (one_thread: an autouse fixture)
from training import evaluate
from training import model_trainer_unified as trainer

ROOT = Path(__file__).resolve().parents[1]



def repo_of(dataset: Path, name: str) -> Path:
    return dataset.parent.parent / name


def test_trainer_step0_equals_evaluate(pretrained, datasets, tmp_path):
    out = tmp_path / "ft"
    trainer.run(tiny(datasets["log"], out, model=str(pretrained), max_steps=2, eval_examples=40, batch_size=4))
    step0 = next(x for x in records(out) if x["event"] == "eval")
    report = tmp_path / "ev.json"
    for extra in (["--eval-set", str(out / "eval_set.json")], ["--max-examples", "40"]):  # recorded, or same defaults
        code = evaluate.main(["--model", str(pretrained), "--dataset", str(datasets["log"]), "--batch-size", "4",
                              "--device", "cpu", "--no-progress", "--output", str(report), *extra])
        assert code == 0
        [r] = json.loads(report.read_text())
        assert r["val"]["examples"] == r["test"]["examples"] == 40
        assert r["val"]["loss"] == pytest.approx(step0["val_loss"], rel=1e-6)
        assert r["test"]["loss"] == pytest.approx(step0["test_loss"], rel=1e-6)
    langs = r["test"]["by_language"]
    assert "rust" in langs and sum(g["tokens"] for g in langs.values()) == r["test"]["tokens"]
    assert math.isclose(sum(g["loss"] * g["tokens"] for g in langs.values()) / r["test"]["tokens"],
                        r["test"]["loss"], rel_tol=1e-4)


def test_evaluation_set_is_chosen_by_example(datasets, tmp_path, monkeypatch):
    """The same examples whatever the batch size; each split measured once per evaluation."""
    from training.evaluator import Evaluator
    calls = []
    measure = Evaluator.measure

    def counted(self, model, name, *a, **kw):
        calls.append(name)
        return measure(self, model, name, *a, **kw)

    monkeypatch.setattr(Evaluator, "measure", counted)
    runs = {}
    for bs in (2, 4):
        out = tmp_path / f"bs{bs}"
        calls.clear()
        trainer.run(tiny(datasets["log"], out, max_steps=4, eval_every=2, batch_size=bs, eval_examples=12))
        runs[bs] = (json.loads((out / "eval_set.json").read_text()), records(out), list(calls))
    (a, ra, calls_a), (b, rb, _) = runs[2], runs[4]
    assert a["splits"]["val"]["indices"] == b["splits"]["val"]["indices"] and len(a["splits"]["val"]["indices"]) == 12
    assert a["splits"]["test"]["indices"] == b["splits"]["test"]["indices"]
    first = [next(x for x in r if x["event"] == "eval") for r in (ra, rb)]
    assert first[0]["val_loss"] == pytest.approx(first[1]["val_loss"], rel=1e-5)
    # step 0: val and test; steps 2 and 4: val; the end: test only (val of the final weights is known)
    assert calls_a == ["val", "test", "val", "val", "test"]


def test_eval_set_of_another_dataset_is_one_line(pretrained, datasets, tmp_path, capsys):
    out = tmp_path / "run"
    trainer.run(tiny(datasets["click"], out, max_steps=1, eval_examples=8))
    other = json.loads((out / "eval_set.json").read_text())
    other["splits"]["test"]["context_window"] = 32  # other windows
    (tmp_path / "windows.json").write_text(json.dumps(other))
    other["splits"]["test"]["context_window"] = 64
    other["splits"]["test"]["tokenizer_sha256"] = "0" * 64  # another tokenizer
    (tmp_path / "tokenizer.json").write_text(json.dumps(other))
    for bad, name, word in ((out / "eval_set.json", "log", "n_examples"), (tmp_path / "windows.json", "click", "context_window"),
                            (tmp_path / "tokenizer.json", "click", "tokenizer_sha256")):
        capsys.readouterr()
        code = evaluate.main(["--model", str(pretrained), "--dataset", str(datasets[name]), "--eval-set", str(bad),
                              "--device", "cpu", "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "drawn from another dataset" in err[0] and word in err[0]


def test_empty_test_split_is_one_line(pretrained, datasets, tmp_path, capsys):
    ds = tmp_path / "ds"
    shutil.copytree(datasets["log"], ds)
    shutil.copytree(datasets["log"].parent / "tokenizer", tmp_path / "tokenizer", dirs_exist_ok=True)
    test = json.loads((ds / "training_data_test.json").read_text())
    test["examples"] = []
    (ds / "training_data_test.json").write_text(json.dumps(test))
    code = evaluate.main(["--model", str(pretrained), "--dataset", str(ds), "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no test split with examples" in err[0]


def test_benchmark_tasks_are_the_test_periods_added_lines(datasets):
    from core.git_runner import Git
    from training.benchmark import build_tasks
    from training.data import load_chunk_map, load_split
    repo = repo_of(datasets["click"], "click")
    cmap = load_chunk_map(load_split(datasets["click"] / "training_data_test.json"))
    test_commits = {r["commit"] for r in cmap.rows}
    git = Git(repo)
    tasks = build_tasks(git, cmap, 20, 10, seed=0)
    again = build_tasks(git, cmap, 20, 10, seed=0)
    assert [t.record() for t in tasks] == [t.record() for t in again]  # seeded
    lines = [t for t in tasks if t.kind == "line"]
    assert lines and all(t.category in ("code", "tests") and t.commit in test_commits for t in lines)
    for t in tasks:
        diff = git.run("show", "--format=", "-U0", t.commit, "--", t.path).decode()
        added = {x[1:] for x in diff.splitlines() if x.startswith("+")}
        subject = git.run("show", "-s", "--format=%s", t.commit).decode().strip()
        assert t.header.startswith("commit ") and subject in t.header and f"file {t.path}\n" in t.header
        parent = git.run("show", f"{t.commit}^:{t.path}").decode() if t.commit and _has(git, t) else ""
        assert all(x in added for x in t.answer.split("\n"))
        # the prompt is the parent's file up to the hunk, then (line tasks) the hunk's lines before the answer
        rows = t.prefix.split("\n")[:-1]
        k = len(rows)
        while not parent.startswith("".join(x + "\n" for x in rows[:k])):
            assert t.kind == "line" and rows[k - 1] in added
            k -= 1
        assert parent.endswith(t.suffix)


def _has(git, task) -> bool:
    return git.try_run("cat-file", "-e", f"{task.commit}^:{task.path}") is None and \
        git.run("ls-tree", f"{task.commit}^", "--", task.path).strip() != b""


def fim_model(pretrained: Path, dest: Path) -> Path:
    """The pretrained model with StarCoder's FIM tokens in its own tokenizer (as a dataset tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    tok = AutoTokenizer.from_pretrained(str(pretrained))
    tok.add_tokens(["<fim_prefix>", "<fim_suffix>", "<fim_middle>"], special_tokens=True)
    model = AutoModelForCausalLM.from_pretrained(str(pretrained))
    model.resize_token_embeddings(len(tok))
    tok.save_pretrained(dest)
    model.save_pretrained(dest)
    return dest


def test_fim_transform_is_psm_or_spm_and_seeded(pretrained, datasets):
    from core.tokenizer import load_tokenizer
    from training.data import load_split
    from training.fim import FimTransform, add_fim_tokens
    tok = load_tokenizer(str(pretrained))
    spec = add_fim_tokens(tok)
    split = load_split(datasets["log"] / "training_data_train.json")
    sep = int(split.identity["separator_id"])
    s = int(split.starts[7])
    ids = np.asarray(split.tokens[s:s + 80], dtype=np.int64)
    always = FimTransform(tok, spec, rate=1.0, spm_rate=0.0, seed=1, separator_id=sep)
    out = always((0, 7), ids)
    assert np.array_equal(out, always((0, 7), ids)) and len(out) <= len(ids)
    assert not np.array_equal(out, FimTransform(tok, spec, 1.0, 0.0, seed=2, separator_id=sep)((0, 7), ids))
    # PSM: <pre> prefix <suf> suffix <mid> middle  ==  prefix + middle + suffix of the original chunk
    doc = ids[: np.flatnonzero(ids == sep)[0]] if (ids == sep).any() else ids
    full = always.permute(doc, np.random.default_rng(0)).tolist()
    p, q, m = full.index(spec.prefix), full.index(spec.suffix), full.index(spec.middle)
    assert p == 0 and p < q < m
    pieces = [tok.decode(full[p + 1:q]), tok.decode(full[q + 1:m]), tok.decode(full[m + 1:])]
    assert pieces[0] + pieces[2] + pieces[1] == tok.decode(doc.tolist())
    spm = FimTransform(tok, spec, 1.0, 1.0, seed=1, separator_id=sep).permute(doc, np.random.default_rng(0)).tolist()
    assert spm[:2] == [spec.prefix, spec.suffix]  # SPM: the suffix first
    never = FimTransform(tok, spec, rate=0.0, spm_rate=0.5, seed=1, separator_id=sep)
    assert np.array_equal(never((0, 7), ids), ids)


def test_fim_training_needs_fim_tokens(pretrained, datasets, tmp_path, capsys):
    code = trainer.main(["--config", str(ROOT / "training_config_tiny.yaml"), "--model", str(pretrained),
                         "--sequences", str(datasets["log"] / "training_data_train.json"), "--fim-rate", "0.5",
                         "--output", str(tmp_path / "x"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no fill-in-the-middle tokens" in err[0] and "--fim-add-tokens" in err[0]


def test_fim_add_tokens_trains_and_infills(pretrained, datasets, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    out = tmp_path / "fim"
    s = trainer.run(tiny(datasets["click"], out, model=str(pretrained), fim_rate=0.5, fim_add_tokens=True,
                         max_steps=4, eval_every=2, finetune_learning_rate=1e-3))
    assert s["finished"] and math.isfinite(s["test_loss"])
    run = json.loads((out / "run.json").read_text())
    assert run["fim"]["added"] and run["fim"]["tokens"] == ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"]
    tok, model = AutoTokenizer.from_pretrained(str(out)), AutoModelForCausalLM.from_pretrained(str(out))
    base_vocab = AutoTokenizer.from_pretrained(str(pretrained)).__len__()
    assert len(tok) == base_vocab + 3 and model.get_input_embeddings().num_embeddings >= len(tok)
    assert tok.convert_tokens_to_ids("<fim_middle>") == run["fim"]["ids"][2]
    # the benchmark infills with it (its tokenizer extends the dataset's) and not with the base model
    report = tmp_path / "ev.json"
    code = evaluate.main(["--model", str(pretrained), "--model", str(out), "--dataset", str(datasets["click"]),
                          "--repo", str(repo_of(datasets["click"], "click")), "--max-examples", "8",
                          "--completion-lines", "3", "--infill-hunks", "2", "--max-new-tokens", "4",
                          "--infill-new-tokens", "4", "--device", "cpu", "--no-progress", "--output", str(report)])
    assert code == 0
    base, tuned = json.loads(report.read_text())
    assert "infill" not in base and tuned["infill"]["tasks"] == 2 and base["line"]["tasks"] == tuned["line"]["tasks"] == 3
    assert [x["answer"] for x in base["line"]["samples"]] == [x["answer"] for x in tuned["line"]["samples"]]


def test_side_by_side_table(pretrained, datasets, tmp_path, capsys):
    report = tmp_path / "ev.json"
    code = evaluate.main(["--model", str(pretrained), "--model", str(pretrained), "--dataset", str(datasets["click"]),
                          "--repo", str(repo_of(datasets["click"], "click")), "--max-examples", "8",
                          "--completion-lines", "4", "--max-new-tokens", "4", "--device", "cpu", "--no-progress",
                          "--output", str(report)])
    assert code == 0
    a, b = json.loads(report.read_text())
    lines = capsys.readouterr().out.splitlines()
    row = next(x for x in lines if x.startswith("test perplexity "))
    assert row.split()[2:] == [f"{a['test']['perplexity']:.2f}"] * 2  # one column per model
    em = next(x for x in lines if x.startswith("line exact match % "))
    assert em.split()[-2:] == [f"{a['line']['exact_match']:.1f}"] * 2 and a["line"] == b["line"]
    from training.benchmark import scores
    from training.benchmark import Task
    fields = {k: v for k, v in a["line"]["samples"][0].items() if k != "prediction"}
    assert set(fields) == set(Task.__dataclass_fields__)
    assert any(x.startswith("line edit similarity % category=") for x in lines)
    assert scores([Task(**{**fields, "answer": "return a + b"})], ["return  a + b"])["exact_match"] == 100.0
