"""Shared fixtures: real git repositories built with GitPython, a real tokenizer trained here.

Nothing is mocked and nothing is downloaded: `sample_repo` is a small but varied history
(two branches, tags, a merge with a resolved conflict, a rename, a binary file, a non-UTF-8
file, Python and Rust code), and `trained_tokenizer_dir` is a byte-level BPE trained on it.
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path

import git
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the hub
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

PY_V1 = '''"""Geometry helpers."""


def area(width, height):
    return width * height


def perimeter(width, height):
    return 2 * (width + height)
'''

PY_V2 = PY_V1.replace("return width * height", "if width < 0 or height < 0:\n        raise ValueError('negative')\n    return width * height")

RS_V1 = '''pub struct Counter {
    count: u64,
}

impl Counter {
    pub fn new() -> Self {
        Counter { count: 0 }
    }

    pub fn bump(&mut self) -> u64 {
        self.count += 1;
        self.count
    }
}

pub fn add(a: i32, b: i32) -> i32 {
    a + b
}
'''


class RepoBuilder:
    """Write files and commit them with fixed, increasing dates so hashes are reproducible."""

    def __init__(self, path: Path, **init):
        """`init`: more `git init` options (`object_format="sha256"`)."""
        self.path = path
        self.repo = git.Repo.init(path, initial_branch="main", **init)
        with self.repo.config_writer() as cw:
            cw.set_value("user", "name", "Alice Example")
            cw.set_value("user", "email", "alice@example.com")
            cw.set_value("commit", "gpgsign", "false")
        self.tick = 0

    def write(self, rel: str, content: str | bytes) -> None:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            p.write_text(content, encoding="utf-8")
        else:
            p.write_bytes(content)

    def commit(self, message: str, files: dict[str, str | bytes] | None = None,
               remove: list[str] = (), author: tuple[str, str] = ("Alice Example", "alice@example.com")) -> str:
        for rel, content in (files or {}).items():
            self.write(rel, content)
        self.repo.git.add("-A")
        for rel in remove:
            self.repo.git.rm("-q", rel)
        self.tick += 1
        date = f"{datetime.date(2024, 1, 1) + datetime.timedelta(days=self.tick - 1)}T12:00:00+02:00"
        env = {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1], "GIT_AUTHOR_DATE": date,
               "GIT_COMMITTER_NAME": author[0], "GIT_COMMITTER_EMAIL": author[1], "GIT_COMMITTER_DATE": date}
        self.repo.git.commit("-q", "--allow-empty", "-m", message, env=env)
        return self.git("rev-parse", "HEAD")  # GitPython's own ref parsing knows SHA-1 ids only

    def git(self, *args: str, **kwargs) -> str:
        return self.repo.git.execute(["git", *args], **kwargs)


def build_sample_repo(path: Path) -> RepoBuilder:
    """A small history with every case the stages must handle; deterministic hashes."""
    b = RepoBuilder(path)
    bob = ("Bob Builder", "bob@example.com")
    b.commit("Add geometry module", {"src/geometry.py": PY_V1, "README.md": "# Sample\n\nA sample project.\n"})
    b.commit("Add Rust counter", {"rust/src/lib.rs": RS_V1, "rust/Cargo.lock": "# lock\nversion = 3\n"}, author=bob)
    b.git("tag", "v0.1")
    b.commit("Validate area input", {"src/geometry.py": PY_V2})
    b.commit("Add logo and latin-1 notes", {"assets/logo.png": bytes(range(256)) * 4,
                                            "docs/notes.txt": "caf\xe9 cr\xe8me\n".encode("latin-1")})
    # A feature branch and main both change the same line: a real conflict, resolved by hand.
    b.git("checkout", "-q", "-b", "feature")
    b.commit("Feature: counter starts at one", {"rust/src/lib.rs": RS_V1.replace("count: 0", "count: 1")}, author=bob)
    b.commit("Feature: add reset", {"rust/src/lib.rs": RS_V1.replace("count: 0", "count: 1").replace(
        "    pub fn bump", "    pub fn reset(&mut self) {\n        self.count = 0;\n    }\n\n    pub fn bump")}, author=bob)
    b.git("checkout", "-q", "main")
    b.commit("Counter starts at ten", {"rust/src/lib.rs": RS_V1.replace("count: 0", "count: 10")})
    try:
        b.git("merge", "-q", "--no-ff", "feature", "-m", "Merge feature")
    except git.GitCommandError:
        pass  # the expected conflict; resolved below
    resolved = RS_V1.replace("count: 0", "count: 5").replace(
        "    pub fn bump", "    pub fn reset(&mut self) {\n        self.count = 0;\n    }\n\n    pub fn bump")
    b.commit("Merge feature, counter starts at five", {"rust/src/lib.rs": resolved})
    b.git("mv", "src/geometry.py", "src/shapes.py")
    b.write("src/shapes.py", PY_V2 + "\n\ndef square(side):\n    return area(side, side)\n")
    b.repo.git.add("-A")
    b.commit("Rename geometry to shapes and add square")
    b.git("tag", "-a", "v0.2", "-m", "release 0.2")
    b.commit("Empty commit for the record", {})
    return b


@pytest.fixture
def sample_repo(tmp_path: Path) -> RepoBuilder:
    return build_sample_repo(tmp_path / "sample")


@pytest.fixture(scope="session")
def trained_tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE trained here on the sample repository's files, saved with save_pretrained."""
    from core.tokenizer import train_fallback_tokenizer

    base = tmp_path_factory.mktemp("tok")
    b = build_sample_repo(base / "repo")
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(b.path.rglob("*"))
             if p.is_file() and ".git" not in p.parts]
    out = base / "tokenizer"
    train_fallback_tokenizer(texts * 4, out, vocab_size=600)
    return out


FT_CONTEXT, FT_TARGET = 64, 16
BUNDLES = ROOT.parent / "shared" / "repos"


@pytest.fixture(scope="session")
def datasets(tmp_path_factory, trained_tokenizer_dir) -> dict[str, Path]:
    """Stage 4's datasets of the first 40 commits of click and of log, with one tokenizer (the clones
    are beside them: datasets["log"].parent.parent / "log")."""
    import subprocess

    from pipeline.orchestrator import run_pipeline
    from pipeline.config import PipelineConfig
    base = tmp_path_factory.mktemp("ft")
    out = {}
    for name in ("click", "log"):
        bundle = BUNDLES / f"{name}.bundle"
        if not bundle.is_file():
            pytest.skip(f"{bundle} not found: the shared repository bundles are needed")
        subprocess.run(["git", "clone", "-q", str(bundle), str(base / name)], check=True)
        run_pipeline(PipelineConfig(repo=str(base / name), output_dir=str(base / f"data-{name}"),
                                    model=str(trained_tokenizer_dir), context_window=FT_CONTEXT, target_window=FT_TARGET,
                                    max_commits=40, min_chunk_tokens=8, max_chunk_tokens=256, progress=False))
        out[name] = base / f"data-{name}" / "dataset"
    return out


@pytest.fixture(scope="session")
def pretrained(datasets, tmp_path_factory) -> Path:
    """A tiny GPT-2 trained on click's dataset with the shipped smoke-run config: the "pretrained" model."""
    out = tmp_path_factory.mktemp("pre") / "model"
    from training import model_trainer_unified as trainer
    from training.config import load_config
    cfg = load_config(ROOT / "training_config_tiny.yaml", {"train_path": str(datasets["click"] / "training_data_train.json"),
                                                           "output_dir": str(out), "progress": False, "max_steps": 60,
                                                           "learning_rate": 3e-3, "eval_every": 30})
    trainer.run(cfg)
    return out
