"""No planted secret leaves: the whole pipeline on a history full of them, every output file checked.

Each value is built by concatenation so that this file itself holds no secret-shaped literal.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import comprehensive_pipeline
from pipeline.orchestrator import run_pipeline
from conftest import RepoBuilder
from core.secret_rules import SHAPED
from secrets_corpus import build_corpus, named_values, versions
from core.tokenizer import load_tokenizer

SECRETS = {
    "private_key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA" + "Qk3xZz9y" * 8 + "\n" + "Ab12" * 16
                   + "\n-----END RSA PRIVATE KEY-----",
    "aws_key": "AKIA" + "Q3EGWX7ZPLMN4RTY",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/" + "bPxRfiCYEXAMPLEKEY01",
    "github": "ghp_" + "Zx9Yw8Vu7T" * 4,
    "gitlab": "glpat-" + "Hq7Lm2Np4Rs6Tu8Vw0Xy",
    "slack": "xoxb-" + "2048561934-Kd8Fj3Lm9Qp2",
    "stripe": "sk_live_" + "51HcQ2pLmN8rTx4Vb6Wz",
    "google": "AIza" + "SyB-9fK3mP7qR2tV5wX8zA1cE4gH6jL0nQs",
    "jwt": "eyJhbGciOiJIUzI1NiJ9" + ".eyJ1c2VyIjoiYWxpY2UiLCJyb2xlIjoiYWRtaW4ifQ" + ".q9Zr4Kx2Vb7Nm1Lp5Tg8",
    "password": "Tr0ub4dor" + "-and-3-horses",
    "url_password": "s3cr3t" + "PassW0rd",
    # the leaks of issue 11
    "after_aws": "hunter2" + "xyzzy-after-aws",  # a password after an AWS secret in the same text
    "env_letters": "correcthorse" + "batterystaple",  # unquoted, letters only, in .env
    "yaml_letters": "staplebattery" + "horsecorrect",  # in docker-compose YAML
    "props_letters": "horsecorrect" + "staplebattery",  # in a .properties file
    "csv_key": "AKIA" + "M4NB7VC2XZ9LKJ3H",
    "csv_secret": "Zq8rT5vW2yB4nM7kP1sD/" + "fG3hJ6lQ9wE0rT2yU5i",
    "bearer": "9f8e7d6c5b4a3928" + "1706f5e4d3c2b1a0",
    "at_password": "P@ss" + "w0rd!at@sign",
    "path_token": "ghp_" + "Pa7hT0ken" * 4 + "Xy",  # in a file name
    "tag_token": "ghp_" + "T4gT0kenQ" * 4 + "Zw",  # in a tag name
    "branch_token": "glpat-" + "Br4nchT0kenXyZ12345q",  # in a branch name
    "author_token": "xoxb-" + "9081726354-AuTh0rT0kenQw",  # in the author's name
}


def planted_repo(path: Path) -> Path:
    b = RepoBuilder(path)
    config = (f'aws_access_key_id = "{SECRETS["aws_key"]}"\n'
              f'aws_secret_access_key = "{SECRETS["aws_secret"]}"\n'
              f'DB_PASSWORD="{SECRETS["password"]}"\n'
              f'DATABASE_URL = "postgres://admin:{SECRETS["url_password"]}@db.example.com/app"\n')
    code = ("def connect():\n"
            f'    github = "{SECRETS["github"]}"\n'
            f'    gitlab = "{SECRETS["gitlab"]}"\n'
            f'    slack = "{SECRETS["slack"]}"\n'
            f'    stripe = "{SECRETS["stripe"]}"\n'
            f'    maps = "{SECRETS["google"]}"\n'
            f'    session = "{SECRETS["jwt"]}"\n'
            "    return github, gitlab, slack, stripe, maps, session\n")
    b.commit("Add service code", {"app/service.py": "def ping():\n    return 'pong'\n" * 20,
                                  "app/config.py": "SECRET_KEY = 'dev'\nDEBUG = True\n"})
    # several secrets of different kinds in one file
    b.commit("Deploy files", {
        "deploy/.env": (f"aws_secret_access_key = {SECRETS['aws_secret']}\nDB_PASSWORD=\"{SECRETS['after_aws']}\"\n"
                        f"ADMIN_PASSWORD={SECRETS['env_letters']}\n"
                        f"MIRROR=https://deploy:{SECRETS['at_password']}@mirror.example.com/repo.git\n"),
        "docker-compose.yml": f"services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD={SECRETS['yaml_letters']}\n",
        "app/application.properties": f"spring.datasource.password={SECRETS['props_letters']}\n",
        "deploy/credentials.csv": f"Access key ID,Secret access key\n{SECRETS['csv_key']},{SECRETS['csv_secret']}\n",
        "app/api.py": f'HEADERS = {{"Authorization": "Bearer {SECRETS["bearer"]}"}}\n',
        f"keys/{SECRETS['path_token']}.txt": "deploy key\n"}, author=(f"Bot {SECRETS['author_token']}", "bot@example.com"))
    b.git("tag", f"release-{SECRETS['tag_token']}")
    b.git("branch", f"fix/{SECRETS['branch_token']}")
    b.commit("Add deploy settings", {"deploy/settings.env": config, "deploy/id_rsa": SECRETS["private_key"] + "\n"})
    b.commit("Add clients", {"app/clients.py": code})
    b.commit("Remove the key file again", remove=["deploy/id_rsa"])
    b.git("revert", "--no-edit", "HEAD~1")  # a revert brings the deleted key file back
    b.commit(f"Rotate credentials, old token was {SECRETS['github']}", {"app/service.py": "def ping():\n    return 'ok'\n" * 20})
    for i in range(6):  # enough later history for val and test
        b.commit(f"Feature {i}", {f"app/feature_{i}.py": f"def feature_{i}(x):\n    return x + {i}\n" * 10})
    return b.path


def test_no_planted_secret_appears_under_the_output_directory(tmp_path, capsys):
    repo = planted_repo(tmp_path / "repo")
    out = tmp_path / "out"
    cfg = comprehensive_pipeline.parse_args([
        "--repo", str(repo), "--output-dir", str(out), "--model", "no-such/tokenizer", "--fallback-vocab-size", "400",
        "--max-chunk-tokens", "128", "--min-chunk-tokens", "8", "--sequence-length", "64", "--overlap", "16",
        "--context-window", "32", "--target-window", "16", "--snapshot-at", "head", "--no-progress"])
    run_pipeline(cfg)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "chunks_semantic.jsonl" for p in files)
    for p in files:
        data = p.read_bytes()
        for kind, value in SECRETS.items():
            for piece in value.splitlines():
                if len(piece) >= 12:
                    assert piece.encode() not in data, f"{kind} leaked into {p.relative_to(out)}"
    chunks = (out / "chunks_semantic.jsonl").read_text(encoding="utf-8")
    for placeholder in ("<SECRET_AWS_KEY>", "<SECRET_PRIVATE_KEY>", "<SECRET_GITHUB_TOKEN>", "<SECRET_JWT>",
                        "<SECRET_AUTH_HEADER>", "<SECRET_URL_CREDENTIALS>", "<SECRET_AWS_SECRET>"):
        assert placeholder in chunks
    assert "SECRET_KEY = 'dev'" in chunks  # ordinary code is left as written
    # the token streams, decoded with the tokenizer the run saved
    tok = load_tokenizer(str(out / "tokenizer"))
    for split in ("train", "val", "test"):
        text = tok.decode(np.load(out / "dataset" / f"training_data_{split}.tokens.npy").tolist())
        for kind, value in SECRETS.items():
            assert not any(p in text for p in value.splitlines() if len(p) >= 12), f"{kind} in the {split} tokens"
    stats = json.loads((out / "git_history_stats.json").read_text(encoding="utf-8"))
    assert {"paths", "refs", "authors", "diffs", "messages"} <= set(stats["secrets_redacted_fields"])
    n = sum(stats["secrets_redacted"].values())
    assert f"[{n} secrets redacted]" in capsys.readouterr().out  # the run's summary says so


def _pieces(value: str) -> list[str]:
    """The lines of a planted value that are secret (not a key's `-----END ...` or `Version:` armor)."""
    return [p for p in value.replace("\\n", "\n").splitlines()
            if len(p) >= 8 and not p.startswith("-----") and ": " not in p] or [value]


def test_the_secrets_corpus_through_the_pipeline(tmp_path):
    """Issue 23: each of the corpus' secrets added, added again, shown as context in two hunks, deleted,
    in a commit message, a path and a branch name; none in any output file or decoded token stream,
    and every line of typed code in the chunks as written."""
    corpus = build_corpus()
    b = RepoBuilder(tmp_path / "repo")
    b.commit("Start", {"README.md": "# corpus\n"})
    named = named_values(corpus, {k: r for k, _, r in SHAPED if "v" not in r.groupindex and k != "PRIVATE_KEY"})
    message = "".join(t for parts in corpus.parts.values() for t in parts)
    for i in range(3):
        b.commit(f"Corpus, version {i + 1}\n\n{message if i == 1 else ''}",
                 {path: versions(corpus, path)[i] for path in corpus.parts})
    b.commit("Key names", {f"keys/{value}.txt": "x\n" for _, value in named})
    for _, value in named:
        b.git("branch", f"leak/{value}")
    b.commit("Delete the corpus", remove=[*corpus.parts, *(f"keys/{value}.txt" for _, value in named)])
    typed: dict[str, str] = {}
    for path, line in corpus.typed:  # each language in its own file: code is told by the file's language
        typed[f"typed/{path}"] = typed.get(f"typed/{path}", "") + line + "\n"
    for i in range(6):  # later history for val and test; the typed code changes in every split
        files = {path: ("# " if path.endswith(".py") else "// ") + f"version {i}\n" + text for path, text in typed.items()}
        b.commit(f"Feature {i}", {f"src/feature_{i}.txt": f"version {i}\n", **files})
    out = tmp_path / "out"
    cfg = comprehensive_pipeline.parse_args([
        "--repo", str(b.path), "--output-dir", str(out), "--model", "no-such/tokenizer", "--fallback-vocab-size", "400",
        "--max-chunk-tokens", "256", "--min-chunk-tokens", "8", "--sequence-length", "64", "--overlap", "16",
        "--context-window", "32", "--target-window", "16", "--no-progress"])
    comprehensive_pipeline.run_pipeline(cfg)
    secrets = [(k, p) for k, v, _ in corpus.planted for p in _pieces(v)]
    assert len({k for k, _ in secrets}) >= 40
    files = [p for p in out.rglob("*") if p.is_file()]
    for p in files:
        data = p.read_text(encoding="utf-8", errors="replace")
        leaked = sorted({k for k, piece in secrets if piece in data})
        assert not leaked, f"{leaked} in {p.relative_to(out)}"
    tok = load_tokenizer(str(out / "tokenizer"))
    for split in ("train", "val", "test"):
        text = tok.decode(np.load(out / "dataset" / f"training_data_{split}.tokens.npy").tolist())
        assert not sorted({k for k, piece in secrets if piece in text}), split
    chunks = "".join(json.loads(line)["text"] for line in (out / "chunks_semantic.jsonl").open(encoding="utf-8"))
    assert "<SECRET_" in chunks
    missing = [line for path, line in corpus.typed if line not in chunks]
    assert not missing, missing[:5]
