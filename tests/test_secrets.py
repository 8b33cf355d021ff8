"""No planted secret leaves: the whole pipeline on a history full of them, every output file checked.

Each value is built by concatenation so that this file itself holds no secret-shaped literal.
"""

from __future__ import annotations

from pathlib import Path

import comprehensive_pipeline
from conftest import RepoBuilder

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
    b.commit("Add service code", {"app/service.py": "def ping():\n    return 'pong'\n" * 20})
    b.commit("Add deploy settings", {"deploy/settings.env": config, "deploy/id_rsa": SECRETS["private_key"] + "\n"})
    b.commit("Add clients", {"app/clients.py": code})
    b.commit("Remove the key file again", remove=["deploy/id_rsa"])
    b.git("revert", "--no-edit", "HEAD~1")  # a revert brings the deleted key file back
    b.commit(f"Rotate credentials, old token was {SECRETS['github']}", {"app/service.py": "def ping():\n    return 'ok'\n" * 20})
    for i in range(6):  # enough later history for val and test
        b.commit(f"Feature {i}", {f"app/feature_{i}.py": f"def feature_{i}(x):\n    return x + {i}\n" * 10})
    return b.path


def test_no_planted_secret_appears_under_the_output_directory(tmp_path):
    repo = planted_repo(tmp_path / "repo")
    out = tmp_path / "out"
    cfg = comprehensive_pipeline.parse_args([
        "--repo", str(repo), "--output-dir", str(out), "--model", "no-such/tokenizer", "--fallback-vocab-size", "400",
        "--max-chunk-tokens", "128", "--min-chunk-tokens", "8", "--sequence-length", "64", "--overlap", "16",
        "--context-window", "32", "--target-window", "16", "--snapshot-at", "head", "--no-progress"])
    comprehensive_pipeline.run_pipeline(cfg)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert any(p.name == "chunks_semantic.jsonl" for p in files)
    for p in files:
        data = p.read_bytes()
        for kind, value in SECRETS.items():
            for piece in value.splitlines():
                if len(piece) >= 12:
                    assert piece.encode() not in data, f"{kind} leaked into {p.relative_to(out)}"
    chunks = (out / "chunks_semantic.jsonl").read_text(encoding="utf-8")
    for placeholder in ("<SECRET_AWS_KEY>", "<SECRET_PRIVATE_KEY>", "<SECRET_GITHUB_TOKEN>", "<SECRET_JWT>"):
        assert placeholder in chunks
